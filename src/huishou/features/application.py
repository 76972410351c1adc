"""Application features: what the borrower declared and the loan's terms, fixed at disbursal."""

from __future__ import annotations

CATEGORICAL = ("app_employment_type", "app_purpose", "app_channel", "app_device_os")


def application_sql(origination: bool = False) -> str:
    """Ratios use the contractual schedule (annuity, known at disbursal), never payments.

    Origination (T = the decision): only what the application itself says; nothing that exists only
    for approved loans (schedule, disbursal), so approved and declined applications look alike.
    """
    if origination:
        return """
    SELECT s.sid,
      a.amount AS app_amount, a.term_months AS app_term_months, a.rate AS app_rate,
      a.declared_income AS app_income,
      a.amount / nullif(a.declared_income, 0) AS app_amount_to_income,
      a.age AS app_age, a.city_tier AS app_city_tier, a.phone_age_months AS app_phone_age_months,
      a.n_earlier_loans AS app_n_earlier_loans,
      a.employment_type AS app_employment_type, a.purpose AS app_purpose,
      a.channel AS app_channel, a.device_os AS app_device_os
    FROM spine s
    JOIN applications a ON a.loan_id = s.loan_id
    """
    return """
    SELECT s.sid,
      a.amount AS app_amount, a.term_months AS app_term_months, a.rate AS app_rate,
      a.declared_income AS app_income,
      a.amount / nullif(a.declared_income, 0) AS app_amount_to_income,
      l.annuity / nullif(a.declared_income, 0) AS app_annuity_to_income,
      a.age AS app_age, a.city_tier AS app_city_tier, a.phone_age_months AS app_phone_age_months,
      a.n_earlier_loans AS app_n_earlier_loans,
      date_diff('day', a.disbursed_at, s.snapshot_date) AS app_loan_age_days,
      date_diff('hour', a.applied_at, a.disbursed_at) AS app_hours_to_disburse,
      a.employment_type AS app_employment_type, a.purpose AS app_purpose,
      a.channel AS app_channel, a.device_os AS app_device_os
    FROM spine s
    JOIN applications a ON a.loan_id = s.loan_id
    JOIN loan_status l ON l.loan_id = s.loan_id
    """
