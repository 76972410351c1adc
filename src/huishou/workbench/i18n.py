"""Interface text in Chinese (zh-CN, the default) and English, and dates and amounts in the reader's locale
(Babel's CLDR data: 2026年1月1日 / Jan 1, 2026, ¥1,234.50 / CN¥1,234.50)."""

from __future__ import annotations

import datetime as dt
import re

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent

LANGUAGES = ("zh-CN", "en")
_LOCALE = {"zh-CN": Locale.parse("zh_CN"), "en": Locale.parse("en")}  # parsed once: Babel re-parses a name

TEXT: dict[str, dict[str, str]] = {
    "app": {"zh-CN": "回收 · 催收工作台", "en": "huishou · collector workbench"},
    "login": {"zh-CN": "登录", "en": "Log in"},
    "logout": {"zh-CN": "退出", "en": "Log out"},
    "username": {"zh-CN": "用户名", "en": "Username"},
    "password": {"zh-CN": "密码", "en": "Password"},
    "bad_login": {"zh-CN": "用户名或密码错误", "en": "Wrong username or password"},
    "locked": {
        "zh-CN": "登录失败次数过多,账号或地址已暂时锁定,请稍后再试或联系组长解锁",
        "en": "Too many failed logins: this login or address is locked for a while; try later or ask your lead",
    },
    "busy": {"zh-CN": "登录请求过多,请稍后再试", "en": "Too many logins at once; try again shortly"},
    "locked_logins": {"zh-CN": "已锁定的登录", "en": "Locked logins"},
    "locked_until": {"zh-CN": "锁定至", "en": "locked until"},
    "unlock": {"zh-CN": "解锁", "en": "Unlock"},
    "my_list": {"zh-CN": "今日工作清单", "en": "My list for today"},
    "stale_list": {
        "zh-CN": "注意：名单日期为 %s，早于今天 %s。请先运行 huishou strategy 生成今天的名单，再联系客户。",
        "en": "Warning: this list is for %s, before today %s. Run huishou strategy for today's list before contacting.",
    },
    "demo_clock": {
        "zh-CN": "演示时钟：按名单日期 %s 运行，当前演示时间 %s（实际日期 %s）。",
        "en": "Demo clock: running on the list's date %s, demo time %s (real date %s).",
    },
    "list_day_clock": {
        "zh-CN": "时钟按名单日期 %s 运行（实际日期 %s）。",
        "en": "The clock runs on the list's date %s (real date %s).",
    },
    "team": {"zh-CN": "团队概览", "en": "Team overview"},
    "sheet": {"zh-CN": "打印清单", "en": "Printable sheet"},
    "rank": {"zh-CN": "序号", "en": "#"},
    "loan": {"zh-CN": "借据", "en": "Loan"},
    "borrower": {"zh-CN": "借款人", "en": "Borrower"},
    "stage": {"zh-CN": "阶段", "en": "Stage"},
    "action": {"zh-CN": "动作", "en": "Action"},
    "why": {"zh-CN": "原因", "en": "Why"},
    "rules": {"zh-CN": "合规路径", "en": "Rule path"},
    "p_paid": {"zh-CN": "还款概率", "en": "P(paid)"},
    "expected": {"zh-CN": "预期回收", "en": "expected"},
    "window": {"zh-CN": "可联系时段(借款人当地)", "en": "Allowed window (borrower's time)"},
    "language": {"zh-CN": "沟通语言", "en": "Language"},
    "dpd": {"zh-CN": "逾期天数", "en": "DPD"},
    "overdue": {"zh-CN": "逾期金额", "en": "Overdue"},
    "outstanding": {"zh-CN": "剩余本息", "en": "Outstanding"},
    "risk": {"zh-CN": "风险", "en": "Risk"},
    "status": {"zh-CN": "状态", "en": "Status"},
    "open": {"zh-CN": "待处理", "en": "To do"},
    "worked": {"zh-CN": "已联系", "en": "Worked"},
    "contact_details": {"zh-CN": "联系方式", "en": "Contact details"},
    "name": {"zh-CN": "姓名", "en": "Name"},
    "phone": {"zh-CN": "电话", "en": "Phone"},
    "address": {"zh-CN": "地址", "en": "Address"},
    "hidden": {"zh-CN": "(仅当日负责催收员可见)", "en": "(shown to the assigned collector on the day only)"},
    "record": {"zh-CN": "记录联系", "en": "Record a contact"},
    "channel": {"zh-CN": "渠道", "en": "Channel"},
    "outcome": {"zh-CN": "结果", "en": "Outcome"},
    "amount": {"zh-CN": "金额", "en": "Amount"},
    "promised_date": {"zh-CN": "承诺还款日", "en": "Promised date"},
    "note": {"zh-CN": "备注", "en": "Note"},
    "save": {"zh-CN": "保存", "en": "Save"},
    "saved": {"zh-CN": "已保存", "en": "Saved"},
    "history": {
        "zh-CN": "联系记录(本人全部贷款,最新在前)",
        "en": "Contact history (every loan of the borrower, newest first)",
    },
    "time": {"zh-CN": "时间", "en": "Time"},
    "refused": {"zh-CN": "不允许此次联系", "en": "This contact is not allowed"},
    "refused_logged": {"zh-CN": "已记入合规审计日志。", "en": "It has been logged in the audit log."},
    "bad_form": {"zh-CN": "请检查输入", "en": "Please check the form"},
    "need_amount": {"zh-CN": "承诺还款需填写金额与日期", "en": "A promise needs an amount and a date"},
    "bad_date": {
        "zh-CN": "承诺日期需在今天之后的允许范围内",
        "en": "The promised date must lie within the allowed days",
    },
    "bad_outcome": {"zh-CN": "该渠道不支持此结果", "en": "That outcome is not possible on this channel"},
    "reassign": {"zh-CN": "改派", "en": "Reassign"},
    "to": {"zh-CN": "给", "en": "to"},
    "collector": {"zh-CN": "催收员", "en": "Collector"},
    "assigned": {"zh-CN": "分配", "en": "Assigned"},
    "reached": {"zh-CN": "联系上", "en": "Reached"},
    "promises": {"zh-CN": "承诺还款", "en": "Promises"},
    "paid": {"zh-CN": "已还款", "en": "Paid"},
    "refusals": {"zh-CN": "被拒联系", "en": "Refused contacts"},
    "progress": {"zh-CN": "各催收员进度", "en": "Progress per collector"},
    "promises_due": {"zh-CN": "今日到期承诺", "en": "Promises due today"},
    "promises_broken": {"zh-CN": "已违约承诺", "en": "Broken promises"},
    "compliance_events": {"zh-CN": "合规事件", "en": "Compliance events"},
    "recovery": {"zh-CN": "今日回收(催收员上报)", "en": "Recovered today (reported)"},
    "accounts": {"zh-CN": "户", "en": "accounts"},
    "none_yet": {"zh-CN": "暂无", "en": "None yet"},
    "print": {"zh-CN": "打印", "en": "Print"},
    "sheet_title": {"zh-CN": "催收员工作单", "en": "Collector's sheet"},
    "rule": {"zh-CN": "规则", "en": "Rule"},
    "source": {"zh-CN": "依据", "en": "Source"},
    "back": {"zh-CN": "返回清单", "en": "Back to the list"},
    "day": {"zh-CN": "工作日", "en": "Day"},
    "not_found": {"zh-CN": "没有这个账户", "en": "No such account"},
    "session_expired": {"zh-CN": "会话已过期,请重新登录", "en": "Your session expired; please log in again"},
    "csrf": {"zh-CN": "表单已失效,请刷新页面后重试", "en": "The form expired; reload the page and try again"},
    "lang_other": {"zh-CN": "English", "en": "中文"},
    # vocabulary
    "a_call": {"zh-CN": "电话", "en": "call"},
    "a_visit": {"zh-CN": "上门", "en": "visit"},
    "a_repayment_plan": {"zh-CN": "还款计划", "en": "repayment plan"},
    "a_settlement": {"zh-CN": "和解", "en": "settlement"},
    "a_sms": {"zh-CN": "短信", "en": "SMS"},
    "a_email_letter": {"zh-CN": "信函/邮件", "en": "letter / e-mail"},
    "a_app_push": {"zh-CN": "App 推送", "en": "app push"},
    "a_agency": {"zh-CN": "委外", "en": "agency"},
    "o_no_answer": {"zh-CN": "未接通", "en": "no answer"},
    "o_reached": {"zh-CN": "已联系上", "en": "reached"},
    "o_promise_to_pay": {"zh-CN": "承诺还款", "en": "promise to pay"},
    "o_paid": {"zh-CN": "已还款", "en": "paid"},
    "o_refused": {"zh-CN": "拒绝还款", "en": "refused"},
    "o_wrong_number": {"zh-CN": "号码错误", "en": "wrong number"},
    "o_hardship": {"zh-CN": "报告困难(疾病、家庭变故)", "en": "hardship reported"},
    "o_third_party": {"zh-CN": "他人接听(未透露债务)", "en": "someone else answered (debt not disclosed)"},
    "o_cease": {"zh-CN": "要求停止联系", "en": "asked to cease contact"},
    "o_opt_out": {"zh-CN": "要求停用某渠道", "en": "opted out of a channel"},
    "o_do_not_visit": {"zh-CN": "要求不要上门", "en": "asked not to be visited"},
    "o_dispute": {"zh-CN": "对债务有异议", "en": "disputes the debt"},
    "o_attorney": {"zh-CN": "已委托律师", "en": "represented by a lawyer"},
    "r_cease": {"zh-CN": "停止联系", "en": "cease contact"},
    "r_opt_out": {"zh-CN": "停用渠道", "en": "channel opt-out"},
    "r_do_not_visit": {"zh-CN": "不要上门", "en": "no visits"},
    "r_dispute": {"zh-CN": "债务异议", "en": "dispute"},
    "r_attorney": {"zh-CN": "律师代理", "en": "lawyer"},
    "r_complaint_hold": {"zh-CN": "投诉处理中", "en": "complaint being handled"},
    "r_electronic_consent": {"zh-CN": "同意接收电子消息", "en": "consent to electronic messages"},
    "r_consent_window": {"zh-CN": "约定联系时段", "en": "agreed contact hours"},
    "requests": {"zh-CN": "借款人的要求(生效中)", "en": "The borrower's requests in force"},
    "request_channel": {"zh-CN": "停用的渠道", "en": "Channel to stop"},
    "since": {"zh-CN": "起", "en": "since"},
    "end_request": {"zh-CN": "解除", "en": "End"},
    "hold": {"zh-CN": "暂停", "en": "on hold"},
    "emergency": {"zh-CN": "紧急联系人", "en": "Emergency contacts"},
    "band": {"zh-CN": "风险等级", "en": "band"},
    "risk_in_default": {
        "zh-CN": "已违约:逾期风险模型只为违约前的贷款评分,请参考计划的还款概率",
        "en": "in default: the overdue-risk model scores loans before default; the plan's chance of payment stands in",
    },
    "risk_not_scored": {
        "zh-CN": "今日未评分(该贷款不在本次评分范围内)",
        "en": "not scored on this date (the loan is outside this run's scoring population)",
    },
    "suggested": {"zh-CN": "计划建议", "en": "The plan suggests"},
    "offers": {"zh-CN": "可提供的方案(参数上限内)", "en": "What you may offer (within the caps)"},
    "offer_plan": {"zh-CN": "分期还款计划,最多", "en": "a repayment plan over at most"},
    "offer_extension": {"zh-CN": "展期,最多", "en": "an extension of at most"},
    "offer_settlement": {"zh-CN": "和解减免,最多", "en": "a settlement discount of at most"},
    "offers_none": {"zh-CN": "暂无(未达还款计划条件)", "en": "none yet (a plan is not open at this DPD)"},
    "months": {"zh-CN": "个月", "en": "months"},
    "days": {"zh-CN": "天", "en": "days"},
    "hardship_title": {"zh-CN": "困难报告", "en": "Hardship reported"},
    "care_offered": {"zh-CN": "此后提供的帮助", "en": "Care offered since"},
    "care_none": {"zh-CN": "尚未提供还款计划或和解", "en": "no plan or settlement offered yet"},
    "callbacks": {"zh-CN": "放款后回访", "en": "Verification call (回访)"},
    "cb_purpose": {"zh-CN": "借款用途", "en": "Purpose"},
    "cb_income": {"zh-CN": "收入", "en": "Income"},
    "cb_employer": {"zh-CN": "单位", "en": "Employer"},
    "cb_plan": {"zh-CN": "还款来源", "en": "Repayment plan"},
    "cb_application": {"zh-CN": "申请时", "en": "application"},
    "answered_by_borrower": {"zh-CN": "本人接听", "en": "answered by the borrower"},
    "answered_by_other": {"zh-CN": "他人接听", "en": "answered by someone else"},
    "answered_by_none": {"zh-CN": "无人接听", "en": "not answered"},
    "flag_unreached": {"zh-CN": "未接通", "en": "not reached"},
    "flag_skipped": {"zh-CN": "未回访", "en": "call skipped"},
    "flag_answered_by_other": {"zh-CN": "他人接听", "en": "someone else answered"},
    "flag_identity_not_verified": {"zh-CN": "身份未核实", "en": "identity not verified"},
    "flag_purpose_differs": {"zh-CN": "用途与申请不符", "en": "purpose differs from the application"},
    "flag_employer_differs": {"zh-CN": "单位与申请不符", "en": "employer differs from the application"},
    "flag_income_lower": {"zh-CN": "收入明显低于申请", "en": "income well below the application's"},
    "flag_no_repayment_source": {"zh-CN": "无明确还款来源", "en": "no repayment source"},
    "borrower_time": {"zh-CN": "借款人当地时间", "en": "borrower's local time"},
    "other_loan": {"zh-CN": "(其他贷款)", "en": "(another loan)"},
    "promise_state": {"zh-CN": "承诺", "en": "Promise"},
    "ps_kept": {"zh-CN": "已兑现", "en": "kept"},
    "ps_broken": {"zh-CN": "未兑现", "en": "broken"},
    "ps_pending": {"zh-CN": "待兑现", "en": "pending"},
    "newer": {"zh-CN": "较新", "en": "newer"},
    "older": {"zh-CN": "较早", "en": "older"},
    "emergency_locked": {
        "zh-CN": "仅在借款人失联时可用(号码无效,或连续 3 次未接通)",
        "en": "Available only when the borrower is unreachable (a wrong number, or 3 unanswered calls in a row)",
    },
    "emergency_script": {
        "zh-CN": "只询问如何联系借款人或请其转告回电;不得透露任何债务信息;对方要求不再联系即停止",
        "en": "Only ask how to reach the borrower or to pass on a call-back request; never mention the debt; "
        "stop if they ask",
    },
    "emergency_stopped": {"zh-CN": "已要求不再联系", "en": "asked not to be called again"},
    "locate": {"zh-CN": "记录查找联系", "en": "Record the call"},
    "rel_parent": {"zh-CN": "父母", "en": "parent"},
    "rel_spouse": {"zh-CN": "配偶", "en": "spouse"},
    "rel_sibling": {"zh-CN": "兄弟姐妹", "en": "sibling"},
    "rel_child": {"zh-CN": "子女", "en": "child"},
    "rel_relative": {"zh-CN": "亲属", "en": "relative"},
    "rel_friend": {"zh-CN": "朋友", "en": "friend"},
    "rel_colleague": {"zh-CN": "同事", "en": "colleague"},
    "rel_other": {"zh-CN": "其他", "en": "other"},
    "lo_reached_contact": {"zh-CN": "已接通(未透露债务)", "en": "reached (debt not mentioned)"},
    "lo_no_answer": {"zh-CN": "未接通", "en": "no answer"},
    "lo_asked_to_stop": {"zh-CN": "要求不再联系", "en": "asked not to be called again"},
    "third_party_script": {
        "zh-CN": "若他人接听:只核实如何联系借款人,不得透露任何债务信息",
        "en": "If someone else answers: only ask how to reach the borrower; never mention the debt",
    },
    "s_pre_due": {"zh-CN": "到期前", "en": "pre-due"},
    "s_early": {"zh-CN": "早期", "en": "early"},
    "s_recovery": {"zh-CN": "回收期", "en": "recovery"},
}

RULE_TEXT = {  # why a contact was refused, in the reader's language
    "contact_hours": {
        "zh-CN": "不在允许的联系时段(借款人当地时间)",
        "en": "outside the allowed hours (borrower's time)",
    },
    "unanswered_per_method_day": {
        "zh-CN": "同一联系方式当日未接通次数已达上限",
        "en": "unanswered attempts to this method today at the limit",
    },
    "calls_7d": {"zh-CN": "7 日内电话次数已达上限", "en": "calls in 7 days at the limit"},
    "call_after_conversation": {"zh-CN": "刚通话过,间隔不足", "en": "too soon after a conversation"},
    "cease": {"zh-CN": "借款人已要求停止联系", "en": "the borrower asked to cease contact"},
    "opt_out": {"zh-CN": "借款人已退订此渠道", "en": "the borrower opted out of this channel"},
    "complaint_hold": {"zh-CN": "投诉处理中,暂停联系", "en": "a complaint is being handled"},
    "do_not_visit": {"zh-CN": "借款人拒绝上门", "en": "the borrower asked not to be visited"},
    "hardship": {
        "zh-CN": "困难客户只提供还款计划,不升级催收",
        "en": "hardship: a repayment plan only, never escalation",
    },
    "wrong_number": {"zh-CN": "号码错误,不得再拨打或上门", "en": "wrong number: no call or visit"},
    "contact_cap": {"zh-CN": "7 日内联系次数已达上限", "en": "contacts in 7 days at the cap"},
    "noncontact_first": {"zh-CN": "需先进行非接触提醒", "en": "non-contact reminders come first"},
    "visit_last_resort": {"zh-CN": "上门仅限大额、长期、无法联系的账户", "en": "a visit only as a last resort"},
    "plan_threshold": {"zh-CN": "未达还款计划条件", "en": "a repayment plan is not yet open"},
    "promise_pending": {"zh-CN": "借款人有未到期的还款承诺", "en": "a promise to pay is pending"},
    "stage_actions": {"zh-CN": "该阶段不允许此动作", "en": "not an action of this stage"},
    "pre_due_cap": {"zh-CN": "到期前提醒次数已达上限", "en": "pre-due reminders at the limit"},
    "settlement_policy": {"zh-CN": "和解仅限回收期并在折扣上限内", "en": "settlements only in recovery, within caps"},
    "agency_whitelist": {"zh-CN": "仅限白名单委外机构", "en": "white-listed agencies only"},
    "visits_30d": {"zh-CN": "30 日内上门次数已达上限", "en": "visits in 30 days at the limit"},
    "electronic_consent": {
        "zh-CN": "借款人未书面同意接收短信/推送",
        "en": "no written consent to texts or app messages",
    },
    "dispute": {
        "zh-CN": "借款人对债务有异议,核实前暂停催收",
        "en": "the debt is disputed: no collection until verified",
    },
    "attorney": {
        "zh-CN": "借款人已委托律师,只能通过律师联系",
        "en": "represented by a lawyer: contact the lawyer only",
    },
    "emergency_contact": {
        "zh-CN": "仅在借款人失联时联系紧急联系人(号码无效或连续 3 次未接通),对方要求停止则不再联系",
        "en": "an emergency contact only when the borrower is unreachable, never again once they ask",
    },
}


def text(key: str, lang: str) -> str:
    entry = TEXT.get(key)
    return entry.get(lang, entry["en"]) if entry else key


SPOKEN = {  # the languages a borrower is collected in (applications.language), by code
    "zh": {"zh-CN": "普通话", "en": "Mandarin"},
    "yue": {"zh-CN": "粤语", "en": "Cantonese"},
    "ug": {"zh-CN": "维吾尔语", "en": "Uyghur"},
    "en": {"zh-CN": "英语", "en": "English"},
}


def spoken(code: str, lang: str) -> str:
    """A language code's name in the reader's language (an unknown code as written)."""
    entry = SPOKEN.get(code)
    return entry.get(lang, entry["en"]) if entry else code


def rule_text(rule: str, lang: str) -> str:
    entry = RULE_TEXT.get(rule)
    return entry.get(lang, entry["en"]) if entry else rule


def money(value: float | None, currency: str, lang: str) -> str:
    if value is None or value != value or value in (float("inf"), float("-inf")):
        return "–"
    return format_currency(value, currency, locale=_LOCALE[lang])


def number(value: float | None, lang: str, digits: int = 0) -> str:
    if value is None or value != value:
        return "–"
    return format_decimal(round(value, digits), locale=_LOCALE[lang])


def percent(value: float | None, lang: str) -> str:
    if value is None or value != value:
        return "–"
    return format_percent(value, format="#,##0.0%", locale=_LOCALE[lang])


def date(value: str | dt.date, lang: str) -> str:
    if isinstance(value, str):
        value = dt.date.fromisoformat(value)
    return format_date(value, format="medium", locale=_LOCALE[lang])


# ------------------------------------------------------------------ texts made upstream, in the reader's language

REASON_ZH = {  # huishou's reason words (risk.explain.REASONS) in Chinese, keyed by the English words
    "currently overdue": "当前逾期",
    "was late on this loan before": "本笔借款曾经逾期",
    "often late on this loan": "本笔借款经常逾期",
    "last installment late": "上一期还款逾期",
    "recent installments paid late": "近期各期还款偏晚",
    "missed recent due dates": "近期错过还款日",
    "last installment not fully paid": "上一期未足额还款",
    "missed due dates on this loan": "本笔借款有错过的还款日",
    "a week or more late before": "曾逾期一周以上",
    "paid less than was due": "还款少于应还金额",
    "made partial payments": "有部分还款",
    "no payment for a long time": "长时间未还款",
    "usually pays at the last moment": "通常在最后时刻还款",
    "next installment due soon": "下一期即将到期",
    "large amount outstanding": "未还金额较大",
    "high-risk pricing at approval": "审批时定价风险较高",
    "installment large relative to income": "月供相对收入偏高",
    "loan large relative to income": "借款金额相对收入偏高",
    "low declared income": "申报收入偏低",
    "young borrower profile": "借款人较年轻",
    "new phone number": "手机号使用时间短",
    "acquisition channel with higher risk": "获客渠道风险较高",
    "employment type with higher risk": "职业类型风险较高",
    "verification call contradicted the application": "回访回答与申请信息不一致",
    "stated a different loan purpose on the call": "回访所述借款用途与申请不同",
    "stated a lower income on the call": "回访所述收入低于申请",
    "named a different employer on the call": "回访所述单位与申请不同",
    "verification call answered by someone else": "回访由他人接听",
    "declined the verification questions": "拒绝回答回访问题",
    "could not be reached for verification": "回访未能联系上",
    "identity not confirmed on the call": "回访未能核实身份",
    "no clear repayment source stated": "未说明明确的还款来源",
    "many collection contacts already": "已有多次催收联系",
    "broke a promise to pay": "曾违背还款承诺",
    "hard to reach": "难以联系上",
    "late on an earlier loan": "以往借款曾逾期",
    "often late on earlier loans": "以往借款经常逾期",
}
FAMILY_ZH = {  # the prefix of words made for a feature without its own (risk.explain.reason_text)
    "application": "申请信息",
    "repayment history": "还款记录",
    "earlier loans": "以往借款",
    "verification call": "回访",
    "collection history": "催收记录",
    "attributes": "属性",
    "other": "其他",
}

PATH_ZH = [  # the steps of a plan's rule path (compliance.rules._paths), as patterns
    (r"cap (\d+)/(\d+) in 7d", r"7 日内第 \1 次联系(上限 \2)"),
    (r"hardship -> plan", "困难客户 → 还款计划"),
    (r"no hardship", "无困难报告"),
    (r"(\d+) non-contact first", r"已先行非接触提醒 \1 次"),
    (r"number not wrong", "号码有效"),
    (r"recovery, large, unreached after (\d+)", r"回收期、大额、\1 次提醒后仍未联系上"),
    (r"borrower only", "仅联系借款人本人"),
    (r"first contact: state the lender's identity", "首次联系:表明机构身份"),
    (r"(\S+) hours (\d\d:\d\d-\d\d:\d\d)?", r"\1 允许时段 \2"),
    (r"no contact today", "今日不联系"),
]

SOURCE_ZH = {  # each rule's source (compliance.rules.RULES) in Chinese, keyed by the English text
    "CBA guideline 2026-01-30: no collection 22:00-08:00 without the debtor's consent": (
        "中国银行业协会指引(2026-01-30):未经债务人同意,22:00-08:00 不得催收"
    ),
    "12 CFR 1006.6(b)(1)(i): only 08:00-21:00 at the consumer's location": (
        "美国 12 CFR 1006.6(b)(1)(i):仅限消费者所在地 08:00-21:00"
    ),
    "CBA guideline 2026-01-30: unanswered attempts to the same method at most 6 a day": (
        "中国银行业协会指引(2026-01-30):同一联系方式每日未接通尝试不超过 6 次"
    ),
    "12 CFR 1006.14(b)(2)(i): more than 7 calls in 7 days is presumed harassment": (
        "美国 12 CFR 1006.14(b)(2)(i):7 日内超过 7 次电话推定为骚扰"
    ),
    "12 CFR 1006.14(b)(2)(ii): a call within 7 days after a telephone conversation": (
        "美国 12 CFR 1006.14(b)(2)(ii):电话交谈后 7 日内不得再致电"
    ),
    "12 CFR 1006.6(c): written cease-communication": "美国 12 CFR 1006.6(c):书面要求停止联系",
    "house rule (PIPL art. 24, debtor's objection): a cease request is honoured": (
        "内部规则(《个人信息保护法》第二十四条,债务人拒绝):尊重停止联系的要求"
    ),
    "12 CFR 1006.6(e): opt-out of electronic communications": "美国 12 CFR 1006.6(e):退订电子通讯",
    "house rule (GB/T 45251-2025 personal-information protection)": "内部规则(GB/T 45251-2025 个人信息保护)",
    "GB/T 45251-2025: complaint management": "GB/T 45251-2025:投诉管理",
    "house rule: contact paused while a complaint is investigated": "内部规则:投诉调查期间暂停联系",
    "house rule": "内部规则",
    "house rule: hardship (illness, family crisis) gets a plan, never escalation": (
        "内部规则:困难客户(疾病、家庭变故)只提供还款计划,绝不升级催收"
    ),
    "CBA guideline 2026-01-30: unrelated third parties never reached with debt information": (
        "中国银行业协会指引(2026-01-30):不得向无关第三方透露债务信息"
    ),
    "12 CFR 1006.6(d): no communication with third parties about the debt": (
        "美国 12 CFR 1006.6(d):不得与第三方沟通债务"
    ),
    "house rule: strategy.max_contacts_7d": "内部规则:strategy.max_contacts_7d(7 日联系上限)",
    "house rule: strategy.min_noncontact_before_call": "内部规则:strategy.min_noncontact_before_call(先非接触提醒)",
    "lenders' rule (collection-rules.md): strategy.visit_min_*; recovery stage only": (
        "贷款机构规则(collection-rules.md):strategy.visit_min_*,仅限回收期"
    ),
    "house rule: strategy.plan_min_dpd": "内部规则:strategy.plan_min_dpd(还款计划起始逾期天数)",
    "house rule: strategy.promise_grace_days": "内部规则:strategy.promise_grace_days(承诺宽限天数)",
    "house rule: the collection lifecycle": "内部规则:催收生命周期",
    "house rule: strategy.pre_due_max_reminders": "内部规则:strategy.pre_due_max_reminders(到期前提醒上限)",
    "house rule: strategy.settlement_discounts": "内部规则:strategy.settlement_discounts(和解折扣上限)",
    "CBA guideline 2026-01-30: outsourced agencies from a published white list": (
        "中国银行业协会指引(2026-01-30):委外机构须在公布的白名单内"
    ),
    "house rule: vetted agencies only": "内部规则:仅限经审核的委外机构",
    "12 CFR 1006.6(b)(1)(i) (binds New York's third-party collectors): 08:00-21:00": (
        "美国 12 CFR 1006.6(b)(1)(i)(约束纽约州第三方催收机构):08:00-21:00"
    ),
    "12 CFR 1006.6(b)(2): no communication with a consumer represented by an attorney": (
        "美国 12 CFR 1006.6(b)(2):消费者已委托律师的,不得直接与其联系"
    ),
    "15 USC 1692g(b): collection stops on a dispute until verification is mailed": (
        "美国 15 USC 1692g(b):债务有异议时暂停催收,直至寄出核实材料"
    ),
    "23 NYCRR 1: consent to email or text is revocable; 12 CFR 1006.6(e)": (
        "纽约州 23 NYCRR 1:邮件和短信同意可撤回;美国 12 CFR 1006.6(e)"
    ),
    "23 NYCRR 1: email and text only with the consumer's revocable written consent": (
        "纽约州 23 NYCRR 1:仅在消费者书面同意(可撤回)后发送邮件和短信"
    ),
    "23 NYCRR 1: more than 1 completed call in 7 days, for each debt": "纽约州 23 NYCRR 1:每笔债务 7 日内接通电话不超过 1 次",
    "23 NYCRR 1: more than 3 attempted calls in 7 days, for each debt": "纽约州 23 NYCRR 1:每笔债务 7 日内拨打电话不超过 3 次",
    "940 CMR 7.04(1)(f), 7.05(3)(d): at most one in-person visit in 30 days": (
        "马萨诸塞州 940 CMR 7.04(1)(f)、7.05(3)(d):30 日内上门不超过 1 次"
    ),
    "940 CMR 7.04(1)(f): in excess of two telephone communications (calls or texts) in each seven-day period, "
    "for each debt": "马萨诸塞州 940 CMR 7.04(1)(f):每笔债务每 7 日电话沟通(电话或短信)不超过 2 次",
    "940 CMR 7.04(1): no communication before 8 a.m. or after 9 p.m.": "马萨诸塞州 940 CMR 7.04(1):早 8 点前、晚 9 点后不得联系",
    "house rule (GB/T 45251-2025 complaints handling): a dispute is verified before collection resumes": (
        "内部规则(GB/T 45251-2025 投诉处理):债务有异议的,核实后方可恢复催收"
    ),
    "house rule: a borrower represented by a lawyer is contacted through the lawyer": (
        "内部规则:借款人已委托律师的,通过律师联系"
    ),
    "house rule: a cease request is honoured": "内部规则:尊重停止联系的要求",
    "house rule: a requested channel restriction is honoured": "内部规则:尊重借款人对联系渠道的限制",
    "house rule: no disclosure of the debt to third parties": "内部规则:不得向第三方透露债务",
    "CBA guideline 2026-01-30: third parties only when the debtor is unreachable, only to obtain contact details, "
    "no debt information, stop if they ask": (
        "中国银行业协会指引(2026-01-30):仅在债务人失联时联系第三方,仅用于获取联系方式,不得透露债务信息,对方要求停止即停止"
    ),
    "12 CFR 1006.10: location communications only, no debt information": "美国 12 CFR 1006.10:仅限查找位置的沟通,不得透露债务",
    "house rule: emergency contacts only to locate an unreachable borrower, no debt information": (
        "内部规则:紧急联系人仅用于查找失联借款人,不得透露债务"
    ),
}


def reason(words: str | None, lang: str) -> str:
    """A reason code's words in the reader's language (a lender's own description stays as written)."""
    if not words or lang == "en":
        return words or ""
    if words in REASON_ZH:
        return REASON_ZH[words]
    family, sep, rest = words.partition(": ")
    if sep and family in FAMILY_ZH:
        return f"{FAMILY_ZH[family]}:{rest}"
    return words


def rule_path(path: str | None, lang: str) -> str:
    """The plan's path of rules passed (`cap 1/3 in 7d > no hardship > ...`) in the reader's language."""
    if not path or lang == "en":
        return path or ""
    steps = []
    for step in path.split(" > "):
        for pattern, zh in PATH_ZH:
            if re.fullmatch(pattern, step):
                step = re.sub(pattern, zh, step).strip()
                break
        steps.append(step)
    return " › ".join(steps)


def source(text_: str | None, lang: str) -> str:
    """A rule's source in the reader's language."""
    if not text_ or lang == "en":
        return text_ or ""
    return SOURCE_ZH.get(text_, text_)
