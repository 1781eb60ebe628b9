"""An alert on a flagged failure lists the channel's earlier failures, so every one of them is re-sent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from paysentry.alerts.config import GlobalSettings
from paysentry.alerts.model import MAX_EARLIER_FAILURES, Alert, build_alert
from paysentry.alerts.notification import Notification
from paysentry.alerts.redact import contains_clear_account
from paysentry.alerts.templates import MAX_LISTED_FAILURES, MAX_VALUE, earlier_failures_text, render_email, render_sms
from paysentry.contract import Decision
from paysentry.core import Engine
from paysentry.replay import Replayer
from paysentry.rulebook import load_rulebook
from tests.builders import KEY, at, parse, settle
from tests.harness.alert_fixtures import CLEAR_IBAN, decision

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
SETTINGS = GlobalSettings()


def note(alert: Alert) -> Notification:
    return Notification(id="n-0123456789", kind="firing", receiver="treasury", alerts=[alert], created_at=NOW,
                        new_alert_ids=[alert.alert_id])  # fmt: skip


def with_incident(incident: Any, channel: str = "sepa") -> Decision:
    d = decision("P-9", rule_id="channel_failure_spike", severity="medium", channel=channel)
    d.explanation["channel_incident"] = incident
    return d


def test_the_spike_alert_from_the_engine_lists_every_earlier_failure() -> None:
    replayer = Replayer(Engine(load_rulebook(None), models=None), KEY)
    decisions: list[Decision] = []
    for i, minutes in enumerate((0, 5, 9, 14)):
        event = settle(f"P-{i}", at(hours=minutes / 60), type_="psp.failed", status_reason="R01 outage")
        decisions.extend(replayer.feed(parse(event)))
    alert = build_alert(decisions[-1])
    assert alert is not None and alert.incident is not None
    assert alert.incident.earlier_failures == ["P-0", "P-1", "P-2"]
    email = render_email(note(alert), None, SETTINGS)
    assert "Also failed:   and 3 earlier failures on ach: P-0, P-1, P-2" in email.text
    assert "and 3 earlier failures on ach: P-0, P-1, P-2" in email.html
    sms = render_sms(note(alert), None, SETTINGS)
    assert "pay P-3 and 3 earlier failures." in sms.body


def test_an_alert_without_an_incident_shows_no_such_line() -> None:
    alert = build_alert(decision("P-1"))
    assert alert is not None and alert.incident is None
    assert "earlier failure" not in render_email(note(alert), None, SETTINGS).text
    assert "earlier failure" not in render_sms(note(alert), None, SETTINGS).body


def test_many_failures_are_listed_up_to_the_cap_and_counted() -> None:
    ids = [f"P-{i:02d}" for i in range(14)]
    alert = build_alert(with_incident({"channel": "sepa", "earlier_failures": ids}))
    assert alert is not None
    text = earlier_failures_text(alert)
    listed = ", ".join(ids[:MAX_LISTED_FAILURES])
    assert text == f"and 14 earlier failures on sepa: {listed} (+{14 - MAX_LISTED_FAILURES} more)"
    single = build_alert(with_incident({"channel": "sepa", "earlier_failures": ["P-00"]}))
    assert single is not None and earlier_failures_text(single) == "and 1 earlier failure on sepa: P-00"


def test_long_ids_are_listed_whole_within_one_row() -> None:
    ids = [f"{i:02d}" + "x" * 126 for i in range(MAX_EARLIER_FAILURES)]
    alert = build_alert(with_incident({"channel": "sepa", "earlier_failures": ids}))
    assert alert is not None
    text = earlier_failures_text(alert)
    assert text is not None and len(text) <= MAX_VALUE
    # two 128-character ids do not fit one row beside the head: one is listed whole, the rest counted
    assert text == f"and {MAX_EARLIER_FAILURES} earlier failures on sepa: {ids[0]} (+{MAX_EARLIER_FAILURES - 1} more)"
    assert "…" not in render_email(note(alert), None, SETTINGS).text.split("Also failed:")[1].split("\n")[0]


@pytest.mark.parametrize(
    "incident",
    ["P-1", {"earlier_failures": "P-1"}, {"channel": 7, "earlier_failures": [1, None, ""]}, None, ["P-1"]],
)
def test_a_malformed_incident_costs_nothing_but_its_line(incident: Any) -> None:
    alert = build_alert(with_incident(incident))
    assert alert is not None and alert.incident is None
    assert "Also failed" not in render_email(note(alert), None, SETTINGS).text


def test_overlong_or_too_many_ids_are_bounded_and_a_clear_account_in_the_channel_is_masked() -> None:
    ids = [f"P-{i}" for i in range(40)] + ["y" * 500]
    alert = build_alert(with_incident({"channel": f"sepa {CLEAR_IBAN}", "earlier_failures": ids}))
    assert alert is not None and alert.incident is not None
    assert alert.incident.earlier_failures == [f"P-{i}" for i in range(40 - MAX_EARLIER_FAILURES, 40)]
    email = render_email(note(alert), None, SETTINGS)
    for text in (alert.model_dump_json(), email.text, email.html):
        assert not contains_clear_account(text, CLEAR_IBAN)


def test_an_alert_stored_before_incidents_existed_still_reads() -> None:
    alert = build_alert(with_incident({"channel": "sepa", "earlier_failures": ["P-1"]}))
    assert alert is not None
    stored = alert.model_dump(mode="json")
    del stored["incident"]
    older = Alert.model_validate(stored)
    assert older.incident is None and older.alert_id == alert.alert_id
    assert Alert.model_validate_json(alert.model_dump_json()) == alert
