"""Interface text in Chinese (zh-CN, the default) and English, and dates and amounts in the reader's locale
(Babel's CLDR data: 2026年1月1日 / Jan 1, 2026, ¥1,234.50 / CN¥1,234.50)."""

from __future__ import annotations

import datetime as dt

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent

LANGUAGES = ("zh-CN", "en")
_LOCALE = {"zh-CN": "zh_CN", "en": "en"}

TEXT: dict[str, dict[str, str]] = {
    "app": {"zh-CN": "回收 · 催收工作台", "en": "huishou · collector workbench"},
    "login": {"zh-CN": "登录", "en": "Log in"},
    "logout": {"zh-CN": "退出", "en": "Log out"},
    "username": {"zh-CN": "用户名", "en": "Username"},
    "password": {"zh-CN": "密码", "en": "Password"},
    "bad_login": {"zh-CN": "用户名或密码错误", "en": "Wrong username or password"},
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
    "history": {"zh-CN": "今日联系记录", "en": "Contacts today"},
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
}


def text(key: str, lang: str) -> str:
    entry = TEXT.get(key)
    return entry.get(lang, entry["en"]) if entry else key


def rule_text(rule: str, lang: str) -> str:
    entry = RULE_TEXT.get(rule)
    return entry.get(lang, entry["en"]) if entry else rule


def money(value: float | None, currency: str, lang: str) -> str:
    if value is None or value != value:
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
