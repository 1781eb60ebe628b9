"""Alerts from decisions, redaction, and rendering (email parts, SMS segments)."""

from __future__ import annotations

from datetime import UTC, datetime

from paysentry.alerts.config import GlobalSettings
from paysentry.alerts.model import build_alert
from paysentry.alerts.notification import Notification
from paysentry.alerts.redact import contains_clear_account, masked_account, redact_text
from paysentry.alerts.templates import render_email, render_sms, sms_segments
from paysentry.contract import RuleHit
from paysentry.core import EmptyRuleset, Engine
from paysentry.ports import RuleContext
from paysentry.replay import Replayer
from tests.builders import KEY, at, parse, release, settle
from tests.harness.alert_fixtures import CLEAR_IBAN, decision

NOW = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)
SETTINGS = GlobalSettings(runbook_base_url="https://runbooks.example.com/paysentry")


def note(alerts, kind="firing"):
    return Notification(
        id="n-0123456789", kind=kind, receiver="oncall", alerts=alerts, created_at=NOW,
        new_alert_ids=[a.alert_id for a in alerts],
    )  # fmt: skip


def test_threshold_and_labels():
    assert build_alert(decision(severity="low", action="allow")) is None
    assert build_alert(decision(severity="medium", action="review"), min_action="hold") is None
    d = decision(
        "P-1", severity="high", rule_id="amount_spike", team="treasury",
        extra_rules=[("new_bank_account", "critical", "payee account changed 2 days ago")],
    )  # fmt: skip
    alert = build_alert(d)
    assert alert is not None
    assert alert.labels == {
        "severity": "high",  # the decision's severity
        "rule_id": "new_bank_account",  # the strongest hit
        "rule_ids": "amount_spike,new_bank_account",
        "action": "hold",
        "company": "1000",
        "vendor": "V-100",
        "channel": "sepa",
        "team": "treasury",
    }
    assert [r.rule_id for r in alert.rules] == ["new_bank_account", "amount_spike"]
    assert alert.rules[1].runbook == "https://runbooks.example.com/amount_spike"
    assert alert.payment.approved_by == ["m.roe", "k.lee"]
    # the fixture's created_at/approved_at are facts the core never produces: left out, not shown
    assert alert.payment.times == {"event": "2024-03-04T11:58:00+00:00"}


def test_alert_id_is_stable_for_payment_and_rules():
    a = build_alert(decision("P-1", event_id="e1"))
    b = build_alert(decision("P-1", event_id="e2", reason="different words"))
    c = build_alert(decision("P-1", extra_rules=[("x", "low", "y")]))
    d = build_alert(decision("P-2"))
    assert a.alert_id == b.alert_id
    assert len({a.alert_id, c.alert_id, d.alert_id}) == 3


def test_redaction_of_free_text():
    text = f"payee account changed to {CLEAR_IBAN} (was 1234567890123); token=abc123 for vendor 0000100234"
    out = redact_text(text, keep=["0000100234"])
    assert CLEAR_IBAN not in out and "1234567890123" not in out and "abc123" not in out
    assert "****3000" in out and "****0123" in out and "token=[redacted]" in out
    assert "0000100234" in out, "the alert's own ids are kept"
    assert redact_text("amount 125000.00 EUR on 2024-03-04") == "amount 125000.00 EUR on 2024-03-04"
    assert masked_account("****3000") == "****3000"
    assert masked_account("DE89 3704 0044 0532 0130 00") == "****3000"


def test_a_clear_account_in_a_decision_never_reaches_the_alert():
    d = decision(reason=f"payee account {CLEAR_IBAN} first seen 2 days ago")
    d.explanation["payment"]["payee_account_masked"] = CLEAR_IBAN  # an upstream mistake
    alert = build_alert(d)
    dumped = alert.model_dump_json()
    assert not contains_clear_account(dumped, CLEAR_IBAN)
    email = render_email(note([alert]), None, SETTINGS)
    sms = render_sms(note([alert]), None, SETTINGS)
    for text in (email.subject, email.text, email.html, sms.body):
        assert not contains_clear_account(text, CLEAR_IBAN)


def test_email_has_everything_needed_to_act():
    alert = build_alert(decision("P-1", vendor="V-7", severity="critical", rule_id="new_bank_account"))
    other = build_alert(decision("P-2", vendor="V-7", severity="high"))
    email = render_email(note([other, alert]), None, SETTINGS)
    assert email.subject == "[PaySentry CRITICAL] new_bank_account - vendor V-7 (+1 more)"
    for needed in [
        "P-1", "V-7", "125,000.00 EUR via sepa", "****3000", "j.doe", "m.roe, k.lee", "event 2024-03-04T11:58:00",
        "new_bank_account (critical, block): amount 125000.00", "model score 0.87",
        "Runbook: https://runbooks.example.com/new_bank_account", f"paysentry alerts ack {alert.alert_id}",
        "paysentry alerts silence add vendor=V-7 rule_id=new_bank_account --duration 4h",
        "Acknowledge all 2: paysentry alerts ack n-0123456789",
    ]:  # fmt: skip
        assert needed in email.text, needed
    assert email.text.index("P-1") < email.text.index("P-2"), "critical first"
    assert "<table>" in email.html and "&lt;" not in email.subject


def test_html_is_escaped():
    alert = build_alert(decision(reason="<script>alert(1)</script> & more"))
    email = render_email(note([alert]), None, SETTINGS)
    assert "<script>" not in email.html and "&lt;script&gt;" in email.html


def test_sms_is_short_and_keeps_the_ack_hint():
    alert = build_alert(decision("P-1", vendor="V-7", severity="critical", rule_id="new_bank_account"))
    body = render_sms(note([alert]), None, SETTINGS).body
    assert body == (
        "PaySentry CRITICAL new_bank_account vendor V-7 125,000.00 EUR pay P-1. "
        f"Ack: paysentry alerts ack {alert.alert_id}"
    )
    assert sms_segments(body) == 1

    long = build_alert(decision("P-" + "9" * 40, vendor="V-" + "x" * 300, rule_id="r" * 200))
    body = render_sms(note([long]), None, SETTINGS).body
    assert sms_segments(body) <= 3
    assert body.startswith("PaySentry HIGH rrrr") and body.endswith(f"ack {long.alert_id}")

    unicode = build_alert(decision(vendor="Łódź-" + "ż" * 300))
    body = render_sms(note([unicode]), None, SETTINGS).body
    assert sms_segments(body) <= 3 and body.endswith(f"ack {unicode.alert_id}")


def test_digest_sms_counts_severities():
    alerts = [build_alert(decision(f"P-{i}", severity=s)) for i, s in enumerate(["high", "medium", "medium"])]
    body = render_sms(note(alerts, kind="quiet_digest"), None, SETTINGS).body
    assert "HELD OVERNIGHT" in body and "[2 medium, 1 high]" in body
    assert "ack n-0123456789" in body


class HoldEverything(EmptyRuleset):
    def evaluate(self, ctx: RuleContext) -> tuple[list[RuleHit], list[RuleHit]]:
        return [RuleHit(rule_id="everything", severity="high", action="hold", reason="test")], []


def test_every_payment_fact_from_the_core_reaches_the_email():
    event = release("P-REL", at(0), payee_bank="Commerzbank", po_id="PO-4711", due_date="2026-11-30",
                    invoice_id="INV-77", vendor_name="Acme GmbH")  # fmt: skip
    replayer = Replayer(Engine(HoldEverything()), KEY)
    (released,) = replayer.feed(parse(event))
    (settled,) = replayer.feed(parse(settle("P-REL", at(hours=20))))
    alerts = [build_alert(released), build_alert(settled)]
    assert alerts[1].payment.times["released"] == "2026-11-02T02:00:00+00:00"
    text = "".join(render_email(note([alert]), None, SETTINGS).text for alert in alerts)
    for needed in ["released 2026-11-02T02:00:00+00:00", "Released:      1,000.00 USD", "Commerzbank",
                   "PO PO-4711", "due 2026-11-30", "INV-77", "Acme GmbH", "u-clerk", "u-boss"]:  # fmt: skip
        assert needed in text, needed


def test_unknown_or_unreadable_payment_facts_are_left_out_of_the_alert():
    d = decision("P-1")
    d.explanation["payment"] |= {"colour": "red", "released_at": {"not": "a time"}, "po_id": "PO-1"}
    alert = build_alert(d)
    assert alert is not None
    assert alert.payment.po_id == "PO-1" and alert.payment.released_at is None
    assert "released" not in alert.payment.times and "colour" not in render_email(note([alert]), None, SETTINGS).text


def test_invoice_and_po_numbers_reach_the_alert_as_they_are_while_free_text_digit_runs_are_masked():
    d = decision("P-1")
    d.explanation["payment"] |= {"po_id": "4500012345", "invoice_id": "5100098765",
                                 "status_reason": "paid to 5500998877 by mistake"}  # fmt: skip
    alert = build_alert(d)
    assert alert is not None
    assert alert.payment.po_id == "4500012345" and alert.payment.invoice_id == "5100098765"
    assert "5500998877" not in (alert.payment.status_reason or "")


def test_a_short_account_is_not_shown_in_full_by_its_mask():
    assert masked_account("1234") == "****"
    assert masked_account("123456") == "****56"
