"""The collection vocabulary, written once: channels, outcomes and the sets the rules and features use.

A leaf: imports nothing of the project.
"""

from __future__ import annotations

# Collection actions (the `channel` of a logged action; `none`: the policy chose to wait).
NONE = "none"
ACTIONS = ("none", "sms", "app_push", "email_letter", "call", "visit", "repayment_plan", "settlement", "agency")
CONTACTS = ACTIONS[1:]  # every action that contacts the borrower
NONCONTACT = ("sms", "app_push", "email_letter")  # messages: no conversation with a person
HUMAN = ("call", "visit", "repayment_plan", "settlement")  # actions a collector performs
VOICE = ("call", "visit")  # actions that reach a person by phone or in person
# Contacts that are a conversation with the borrower when they reach them (outcome in REACHED): the
# conversation prong of a call limit (Reg F 1006.14(b)(2)(ii)) counts every one of them, in the planner
# and at record time alike (huishou.compliance.is_conversation). Conservative: a visit counts too.
CONVERSATIONS = ("call", "visit", "repayment_plan", "settlement")
ELECTRONIC = ("sms", "app_push")  # electronic messages (email_letter is read as a letter)

# The collection lifecycle and what each stage may do.
STAGES = ("pre_due", "early", "recovery")
STAGE_ACTIONS = {
    "pre_due": ("none", "sms", "app_push"),  # gentle reminders before a due date
    "early": ("none", "sms", "app_push", "email_letter", "call", "visit", "repayment_plan"),
    "recovery": ("none", "sms", "email_letter", "call", "visit", "repayment_plan", "settlement", "agency"),
}
AUTO = "AUTO"  # the worklist of automated channels (sms, app push, letters): no collector minutes

# Outcomes of a logged action.
OUTCOMES = ("none", "no_answer", "reached", "promise_to_pay", "paid", "refused", "wrong_number", "third_party")
REACHED = ("reached", "promise_to_pay", "paid", "refused")  # the borrower was spoken to
THIRD_PARTY = "third_party"  # someone else answered: told nothing about the debt, not a conversation
_MESSAGE_OUTCOMES = ("no_answer", "reached", "promise_to_pay", "paid")  # read / replied to, or not
OUTCOMES_BY_ACTION = {  # the outcomes each action can have
    "none": ("none",),
    "sms": (*_MESSAGE_OUTCOMES, "wrong_number"),  # a text to a reassigned number can be reported
    "app_push": _MESSAGE_OUTCOMES,
    "email_letter": _MESSAGE_OUTCOMES,
    "call": ("no_answer", "reached", "promise_to_pay", "paid", "refused", "wrong_number", "third_party"),
    "visit": ("no_answer", "reached", "promise_to_pay", "paid", "refused", "third_party"),
    "repayment_plan": ("reached", "promise_to_pay", "paid", "refused"),
    "settlement": ("reached", "promise_to_pay", "paid", "refused"),
    "agency": ("none", "no_answer", "reached", "promise_to_pay", "paid", "refused"),  # what the agency reports
}

# What a borrower told the lender about being contacted (the contact_preferences table).
PREFERENCES = (
    "opt_out",
    "cease",
    "complaint_hold",
    "do_not_visit",
    "consent_window",
    "dispute",  # the borrower disputes the debt: no collection until it is verified
    "attorney",  # represented by a lawyer: contact goes through the lawyer
    "electronic_consent",  # written consent to sms / app push (channel; empty: both), revocable by an opt-out
)
# What a borrower may ask for in a conversation, recorded by the collector (the workbench's outcomes):
# each becomes a contact_preferences row in force from that moment
SPOKEN_REQUESTS = ("cease", "opt_out", "do_not_visit", "dispute", "attorney")
POLICY_STAGES = STAGES

# Emergency contacts: at most two per borrower, entered by the borrower (never read from the phone's contact
# book), called only to locate a borrower who is unreachable, never told of the debt
EMERGENCY_RELATIONS = ("parent", "spouse", "sibling", "child", "relative", "friend", "colleague", "other")
EMERGENCY_SLOTS = (1, 2)
ENTERED_BY_BORROWER = "borrower"
LOCATE_OUTCOMES = ("reached_contact", "no_answer", "asked_to_stop")  # a call to an emergency contact

# Who answered a verification call (回访), and stated repayment sources that are no plan at all.
ANSWERED_BY = ("borrower", "other", "none")
WEAK_REPAYMENT_PLANS = ("other_loan", "none")

# Applications: approved ones were disbursed and have a schedule; the others are scored at origination only.
APPLICATION_STATUSES = ("approved", "pending", "declined")

# The book's tables.
REQUIRED_TABLES = ("applications", "installments")
OPTIONAL_TABLES = (
    "callbacks",
    "collection_actions",
    "attributes",
    "outcomes",
    "contact_preferences",
    "emergency_contacts",
)
ALL_TABLES = REQUIRED_TABLES + OPTIONAL_TABLES


def sql_list(values: tuple[str, ...]) -> str:
    """A SQL IN-list of vocabulary words, e.g. "('sms', 'call')" (words are constants, never user input)."""
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"
