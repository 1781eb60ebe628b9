"""Rendering notifications: email (subject, plain text, HTML) and SMS (a few segments at most).

Receivers pick a template set by name (`default` is built in); a set overrides any of the email
subject, intro and footer, and the SMS text, as `string.Template` text with `${placeholder}`s. The
per-alert blocks (payment, rules and reasons, scores, runbook, ack and silence commands, and for a
flagged failure the channel's earlier failures to re-send) are rendered here, so every email carries
what a person needs to act whatever the template says. `${earlier}` (" and 3 earlier failures", or
empty) brings the count into the SMS.
"""

from __future__ import annotations

import html
import shlex
import string
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from paysentry.alerts.config import GlobalSettings, TemplateSet
    from paysentry.alerts.model import Alert
    from paysentry.alerts.notification import Notification

COMMON = {
    "severity", "SEVERITY", "rule_id", "vendor", "company", "payment_id", "amount", "currency", "count",
    "new_count", "more", "receiver", "kind", "kind_label", "alert_id", "ack_command", "note", "earlier",
    "case_url",
}  # fmt: skip
# `case_url` is the desk's page for the payment, empty when no desk address is set (the built-in texts add
# it only when there is one). Wherever a template puts it, a shortened SMS keeps it whole.
PLACEHOLDERS: dict[str, set[str]] = {"email": COMMON | {"silence_command", "runbook"}, "sms": set(COMMON)}
KIND_LABELS = {
    "firing": "", "repeat": "REPEAT ", "escalation": "ESCALATED ", "digest": "DIGEST ",
    "quiet_digest": "HELD OVERNIGHT ", "rate_summary": "RATE-LIMITED ", "test": "TEST ",
}  # fmt: skip
DEFAULT_SUBJECT = "[PaySentry ${SEVERITY}] ${kind_label}${rule_id} - vendor ${vendor}${more}"
DEFAULT_INTRO = "PaySentry raised ${count} alert(s) for ${receiver} (${new_count} new)."
DEFAULT_FOOTER = "Acknowledge to stop repeats and escalation; silence to mute similar alerts for a while."
DEFAULT_SMS = (
    "PaySentry ${SEVERITY} ${kind_label}${rule_id} vendor ${vendor} ${amount} ${currency} "
    "pay ${payment_id}${earlier}${more}. Ack: ${ack_command}"
)
DEFAULT_SMS_WITH_CASE = DEFAULT_SMS + " Case: ${case_url}"
MAX_SMS_SEGMENTS = 3
SMS_SEGMENT = 153  # characters of one part of a long GSM-7 message
SMS_FIXED_TAIL = 60  # the end of a shortened SMS kept as it is: the ack hint
MAX_VALUE = 300
"""Characters of one placeholder value or table cell (a vendor name, a label) in a rendered text."""
MAX_LINE = 1000
"""Characters of one rule line (its reason) and of the subject, intro and footer once filled in."""
MAX_LISTED_ALERTS = 50
"""Alerts shown in full in one email; the rest are counted (a digest can hold thousands)."""
MAX_LISTED_FAILURES = 10
"""Earlier failures of a channel incident named by id in one alert; the rest are counted."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class RenderedSms:
    body: str


def cap(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters (the last one an ellipsis) when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_amount(amount: str | None) -> str:
    if amount is None:
        return "?"
    try:
        return f"{Decimal(amount):,.2f}"
    except InvalidOperation:
        return amount


def ack_command(cli: str, notification: Notification) -> str:
    target = notification.alerts[0].alert_id if len(notification.alerts) == 1 else notification.id
    return f"{cli} ack {target}"


def silence_command(cli: str, alert: Alert) -> str:
    pairs = [f"{k}={alert.labels[k]}" for k in ("vendor", "rule_id") if alert.labels.get(k)]
    matchers = " ".join(shlex.quote(p) for p in pairs)
    return f"{cli} silence add {matchers} --duration 4h --comment {shlex.quote('why')}"


def runbook_url(rule_id: str, runbook: str | None, settings: GlobalSettings) -> str | None:
    if runbook:
        return runbook
    if settings.runbook_base_url:
        return f"{settings.runbook_base_url.rstrip('/')}/{rule_id}"
    return None


def case_url(alert: Alert, settings: GlobalSettings) -> str | None:
    """The review desk's page for the alert's payment (it redirects to the payment's case), when the
    desk's address is configured and the alert is about one payment. The payment id comes from the ERP:
    it is percent-encoded whole."""
    if not settings.desk_base_url or not alert.about_a_payment:
        return None
    url = f"{settings.desk_base_url}/cases/by-payment/{quote(alert.payment_id, safe='')}"
    return url if len(url) <= MAX_VALUE else None  # a link cut short leads nowhere


def _failures(count: int) -> str:
    return f"{count} earlier failure{'s' if count != 1 else ''}"


def earlier_failures_text(alert: Alert) -> str | None:
    """`and 3 earlier failures on sepa: P1, P2, P3`, so every payment the incident failed is re-sent;
    whole ids only, as many as fit one row, the rest counted."""
    incident = alert.incident
    if incident is None or not incident.earlier_failures:
        return None
    ids = incident.earlier_failures
    on = f" on {incident.channel}" if incident.channel else ""
    head = f"and {_failures(len(ids))}{on}: "
    listed: list[str] = []
    for payment_id in ids[:MAX_LISTED_FAILURES]:
        rest = len(ids) - len(listed) - 1
        tail = f" (+{rest} more)" if rest else ""
        if len(head) + len(", ".join([*listed, payment_id])) + len(tail) > MAX_VALUE:
            break
        listed.append(payment_id)
    unlisted = len(ids) - len(listed)
    return head + ", ".join(listed) + (f" (+{unlisted} more)" if unlisted else "")


def _linkable(url: str) -> bool:
    return url.startswith(("https://", "http://"))


def _values(notification: Notification, settings: GlobalSettings) -> dict[str, str]:
    top = notification.top
    others = len(notification.alerts) - 1
    values = {
        "severity": notification.severity,
        "SEVERITY": notification.severity.upper(),
        "rule_id": top.rule_id,
        "vendor": top.vendor_id or "-",
        "company": top.company_code or "-",
        "payment_id": top.payment_id,
        "amount": format_amount(top.payment.amount),
        "currency": top.payment.currency or "",
        "count": str(len(notification.alerts)),
        "new_count": str(len(notification.new_alert_ids)),
        "more": f" (+{others} more)" if others else "",
        "earlier": f" and {_failures(len(top.incident.earlier_failures))}" if top.incident else "",
        "receiver": notification.receiver,
        "kind": notification.kind,
        "kind_label": KIND_LABELS.get(notification.kind, ""),
        "alert_id": top.alert_id,
        "ack_command": ack_command(settings.cli, notification),
        "note": notification.note or "",
        "silence_command": silence_command(settings.cli, top),
        "runbook": runbook_url(top.rule_id, top.rules[0].runbook if top.rules else None, settings) or "",
        "case_url": case_url(top, settings) or "",
    }
    return {name: cap(value, MAX_VALUE) for name, value in values.items()}


def _alert_rows(alert: Alert, settings: GlobalSettings, new: bool) -> list[tuple[str, str]]:
    p = alert.payment
    via = f" via {p.channel}" if p.channel else ""
    rows = [
        ("Alert", f"{alert.alert_id}{'  (new)' if new else ''}"),
        ("Payment", f"{alert.payment_id} ({alert.event_type or 'event'})"),
        ("Vendor", " ".join(x for x in (alert.vendor_id or "-", p.vendor_name or "") if x)),
        ("Company", alert.company_code or "-"),
        ("Amount", f"{format_amount(p.amount)} {p.currency or ''}".strip() + via),
        ("Payee account", " ".join(x for x in (p.payee_account_masked or "-", p.payee_bank or "",
                                                p.payee_country or "") if x)),  # fmt: skip
        ("Invoice", "  ".join(x for x in (p.invoice_id or "-", p.po_id and f"PO {p.po_id}",
                                           p.due_date and f"due {p.due_date}") if x)),  # fmt: skip
        ("Created by", p.created_by or "-"),
        ("Approved by", ", ".join(p.approved_by or []) or "-"),
        ("Times", "; ".join(f"{k} {v}" for k, v in p.times.items())),
    ]  # fmt: skip
    if p.released_amount is not None:
        rows.append(("Released", f"{format_amount(p.released_amount)} {p.currency or ''}".strip()))
    if p.status_reason:
        rows.append(("Status", p.status_reason))
    earlier = earlier_failures_text(alert)
    if earlier:
        rows.append(("Also failed", earlier))
    link = case_url(alert, settings)
    if link:
        rows.append(("Case", link))
    model_score = f"{alert.model_score:.2f}" if alert.model_score is not None else "n/a (warming up)"
    rows.append(("Action", f"{alert.action}  risk {alert.risk_score:.2f}  model score {model_score}"))
    return [(label, cap(value, MAX_VALUE)) for label, value in rows]


def _rule_lines(alert: Alert, settings: GlobalSettings) -> list[tuple[str, str | None]]:
    lines = []
    for rule in alert.rules or []:
        text = cap(f"{rule.rule_id} ({rule.severity}, {rule.action}): {rule.reason}", MAX_LINE)
        runbook = runbook_url(rule.rule_id, rule.runbook, settings)
        lines.append((text, cap(runbook, MAX_LINE) if runbook else None))
    if not lines:
        lines.append(("model: the anomaly model alone flagged this payment", None))
    return lines


def render_email(notification: Notification, template: TemplateSet | None, settings: GlobalSettings) -> RenderedEmail:
    values = _values(notification, settings)
    subject_t = (template and template.email_subject) or DEFAULT_SUBJECT
    intro_t = (template and template.email_intro) or DEFAULT_INTRO
    footer_t = (template and template.email_footer) or DEFAULT_FOOTER
    subject = cap(" ".join(string.Template(subject_t).safe_substitute(values).split()), MAX_LINE)
    intro = cap(string.Template(intro_t).safe_substitute(values), MAX_LINE)
    footer = cap(string.Template(footer_t).safe_substitute(values), MAX_LINE)
    new = set(notification.new_alert_ids)
    text = [intro]
    body_html = [f"<p>{html.escape(intro)}</p>"]
    if notification.note:
        text.append(notification.note)
        body_html.append(f"<p><strong>{html.escape(notification.note)}</strong></p>")
    if notification.group_labels:
        grouped = cap(", ".join(f"{k}={v}" for k, v in notification.group_labels.items()), MAX_LINE)
        text.append(f"Grouped by: {grouped}")
        body_html.append(f"<p>Grouped by: {html.escape(grouped)}</p>")
    ordered = sorted(notification.alerts, key=lambda a: (-a.rank, -a.risk_score, a.alert_id))
    for alert in ordered[:MAX_LISTED_ALERTS]:
        rows = _alert_rows(alert, settings, alert.alert_id in new)
        rules = _rule_lines(alert, settings)
        ack = f"{settings.cli} ack {alert.alert_id}"
        silence = cap(silence_command(settings.cli, alert), MAX_LINE)
        text.append("")
        text.append(f"[{alert.severity.upper()}] {alert.rule_id}")
        text.extend(f"  {label + ':':<15}{value}" for label, value in rows)
        text.append("  Rules fired:")
        for line, runbook in rules:
            text.append(f"    - {line}")
            if runbook:
                text.append(f"      Runbook: {runbook}")
        text.append(f"  {'Acknowledge:':<15}{ack}")
        text.append(f"  {'Silence:':<15}{silence}")
        cells = "".join(
            f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>" for label, value in rows
        )
        items = "".join(
            f"<li>{html.escape(line)}"
            + (f' (<a href="{html.escape(runbook)}">runbook</a>)' if runbook and _linkable(runbook) else "")
            + "</li>"
            for line, runbook in rules
        )
        body_html.append(
            f"<h3>[{html.escape(alert.severity.upper())}] {html.escape(alert.rule_id)}</h3>"
            f"<table>{cells}</table><p>Rules fired:</p><ul>{items}</ul>"
            f"<p>Acknowledge: <code>{html.escape(ack)}</code><br>Silence: <code>{html.escape(silence)}</code></p>"
        )
        link = case_url(alert, settings)
        if link:
            body_html.append(f'<p><a href="{html.escape(link)}">Open the case in the review desk</a></p>')
    if len(ordered) > MAX_LISTED_ALERTS:
        unlisted = f"... and {len(ordered) - MAX_LISTED_ALERTS} more alert(s): {settings.cli} list"
        text += ["", unlisted]
        body_html.append(f"<p>{html.escape(unlisted)}</p>")
    if len(notification.alerts) > 1:
        text.append("")
        text.append(f"Acknowledge all {len(notification.alerts)}: {ack_command(settings.cli, notification)}")
        body_html.append(f"<p>Acknowledge all: <code>{html.escape(ack_command(settings.cli, notification))}</code></p>")
    text += ["", footer]
    body_html.append(f"<p><small>{html.escape(footer)}</small></p>")
    html_doc = "<html><body>" + "\n".join(body_html) + "</body></html>"
    return RenderedEmail(subject=subject, text="\n".join(text) + "\n", html=html_doc)


_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = set("^{}\\[~]|€\f")


def sms_units(text: str) -> tuple[int, bool]:
    """Length in encoding units and whether the text fits GSM-7 (else it goes as UCS-2)."""
    if all(ch in _GSM7 or ch in _GSM7_EXT for ch in text):
        return sum(2 if ch in _GSM7_EXT else 1 for ch in text), True
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text), False


def sms_segments(text: str) -> int:
    units, gsm = sms_units(text)
    single, part = (160, 153) if gsm else (70, 67)
    return 1 if units <= single else -(-units // part)


def fit_sms(text: str, max_segments: int = MAX_SMS_SEGMENTS, keep_tail: int = 0) -> str:
    """Shorten to at most `max_segments`, keeping the start (severity, rule) and the end (ack hint, and
    `keep_tail` more characters: the case link)."""
    text = " ".join(text.split())
    if sms_segments(text) <= max_segments:
        return text
    tail_length = SMS_FIXED_TAIL + keep_tail
    tail = text[-tail_length:]
    head = text[:-tail_length][: max_segments * 160]  # no more than fits: the loop below shortens it step by step
    while head and sms_segments(f"{head}...{tail}") > max_segments:
        head = head[: max(len(head) - 8, 0)]
    return f"{head.rstrip()}...{tail}"


def render_sms(notification: Notification, template: TemplateSet | None, settings: GlobalSettings) -> RenderedSms:
    values = _values(notification, settings)
    default = DEFAULT_SMS_WITH_CASE if values["case_url"] else DEFAULT_SMS
    text = string.Template((template and template.sms) or default).safe_substitute(values)
    if notification.kind in ("digest", "quiet_digest", "rate_summary"):
        counts: dict[str, int] = {}
        for alert in notification.alerts:
            counts[alert.severity] = counts.get(alert.severity, 0) + 1
        summary = ", ".join(f"{n} {sev}" for sev, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        text = f"{text} [{summary}]"
    # the link is kept whole when the text must be shortened: a cut URL leads nowhere
    text, keep_tail = _keep_link_whole(" ".join(text.split()), values["case_url"])
    return RenderedSms(body=fit_sms(text, keep_tail=keep_tail))


def _keep_link_whole(text: str, url: str) -> tuple[str, int]:
    """The text, and what `fit_sms` must keep beyond its fixed tail so that the link and what follows it
    stay whole wherever a template put it. When the text must be shortened and the link is too far from
    the end for all that follows it to be kept, the link moves to the end."""
    at = text.rfind(url) if url else -1
    if at < 0:
        return text, 0
    after = len(text) - at
    if after > 2 * SMS_SEGMENT and sms_segments(text) > MAX_SMS_SEGMENTS:
        text = f"{text[:at].rstrip()} {text[at + len(url) :].lstrip()} {url}"
        after = len(url)
    return text, max(after + 1 - SMS_FIXED_TAIL, len(url) + 1)  # + 1: the space before the link
