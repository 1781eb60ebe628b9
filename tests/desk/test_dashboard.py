"""The dashboard over HTTP against a live server, on both databases: its figures against values counted
by hand from the decisions imported, the filters, the panel the page polls, the API with its scope,
hostile names and amounts, and the optional analytics KPI file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from paysentry.analytics import kpis_from
from paysentry.desk import importer
from paysentry.desk.dashboard_web import MAX_KPI_FILE_BYTES, platform_kpis
from paysentry.desk.db import Case
from paysentry.desk.security import create_token
from tests.desk.support import add_user, decision, later, login

XSS = "<script>alert(1)</script>"
HOSTILE_COMPANY = "<svg onload=alert(1)>"


def _record(payment: str, event: str, *, channel: str, event_type: str = "payment.released",
            minutes: int = 0, **kwargs: Any) -> dict[str, Any]:  # fmt: skip
    record = decision(payment, event, event_time=later(minutes), **kwargs)
    record["event_type"] = event_type
    record["explanation"]["payment"]["channel"] = channel
    return record


# What the desk is given, and what a person counts from it (the expected figures below).
RECORDS = [
    _record("P-A1", "e1", channel="ach", action="allow", amount="100.00"),
    _record("P-A2", "e2", channel="wire", action="allow", amount="250.50", minutes=60),
    _record("P-A3", "e3", channel="sepa", action="allow", amount="40.00", currency="EUR", company="DE01"),
    _record("P-H1", "e4", channel="wire", action="hold", amount="60000.00", rule_id="duplicate_payment"),
    _record("P-M1", "e5", channel="sepa", action="review", amount="41.00", currency="EUR", company="DE01",
            event_type="psp.settled", rule_id="settlement_mismatch", vendor_name=XSS, minutes=24 * 60),
    _record("P-S1", "e6", channel="ach", action="review", amount="75.00", event_type="sla.unsettled",
            rule_id="unsettled_sla", minutes=2 * 24 * 60),
]  # fmt: skip


def _load(app: FastAPI, records: list[dict[str, Any]]) -> dict[str, int]:
    with app.state.sessions() as session:
        for record in records:
            importer.import_decision(session, record, approvals=app.state.approvals)
        session.commit()
        return {c.payment_id: c.id for c in session.scalars(select(Case))}


def _token(app: FastAPI, name: str, scopes: list[str]) -> dict[str, str]:
    with app.state.sessions() as session:
        raw = create_token(session, name, scopes)
        session.commit()
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def loaded(desk_app: FastAPI) -> dict[str, int]:
    ids = _load(desk_app, RECORDS)
    with desk_app.state.sessions() as session:  # the duplicate was confirmed as fraud
        case = session.get(Case, ids["P-H1"])
        assert case is not None
        case.state, case.verdict = "rejected", "fraud"
        session.commit()
    return ids


def test_the_api_gives_the_figures_counted_by_hand(desk_app: FastAPI, http: httpx.Client, loaded) -> None:
    reader = _token(desk_app, "bi", ["kpis:read"])
    body = http.get("/api/v1/kpis", headers=reader).json()
    assert body["decisions"]["by_action"] == {"allow": 3, "review": 2, "hold": 1, "block": 0}
    assert body["decisions"]["per_day"]["days"] == ["2026-10-06", "2026-10-07", "2026-10-08"]
    assert body["decisions"]["per_day"]["by_action"]["allow"] == [3, 0, 0]
    releases = body["screened_releases"]
    assert releases["payments"] == 4  # the psp.settled and sla.unsettled decisions are not releases
    assert releases["by_currency"] == {"EUR": {"payments": 1, "amount": "40.00"},
                                       "USD": {"payments": 3, "amount": "60350.50"}}  # fmt: skip
    assert releases["payments_by_channel"] == {"ach": 1, "sepa": 1, "wire": 2}
    assert body["rules"]["duplicate_payment"] == {"flagged_payments": 1, "confirmed": 1, "legit": 0,
                                                  "unlabelled": 0, "precision": 1.0}  # fmt: skip
    assert body["rules"]["settlement_mismatch"]["precision"] is None
    assert body["cases"] == {"by_state": {"open": 2, "rejected": 1}, "by_verdict": {"fraud": 1}}
    assert body["backlog"]["open"] == 2 and body["backlog"]["by_age"]["over 7 days"] == 2  # opened in 2026-10
    recon = body["reconciliation"]
    assert recon["counts"] == {"amount mismatch": 1, "unsettled past SLA": 1, "orphan settlement": 0}
    assert [(i["payment_id"], i["kinds"]) for i in recon["items"]] == [
        ("P-S1", ["unsettled past SLA"]), ("P-M1", ["amount mismatch"])]  # fmt: skip
    assert recon["items"][1]["case_url"] == f"/cases/{loaded['P-M1']}"
    assert body["platform"] is None


def test_filters_narrow_every_figure(desk_app: FastAPI, http: httpx.Client, loaded) -> None:
    reader = _token(desk_app, "bi", ["kpis:read"])
    de01 = http.get("/api/v1/kpis", params={"company": "DE01"}, headers=reader).json()
    assert de01["decisions"]["by_action"] == {"allow": 1, "review": 1, "hold": 0, "block": 0}
    assert de01["reconciliation"]["counts"]["amount mismatch"] == 1
    assert de01["reconciliation"]["counts"]["unsettled past SLA"] == 0
    wire = http.get("/api/v1/kpis", params={"channel": "wire"}, headers=reader).json()
    assert wire["decisions"]["by_action"]["allow"] == 1 and wire["decisions"]["by_action"]["hold"] == 1
    assert wire["cases"]["by_state"] == {"rejected": 1} and wire["backlog"]["open"] == 0
    # One day, the 7th: only the mismatch; `to` the 6th: no mismatch nor SLA case.
    seventh = http.get("/api/v1/kpis", params={"days": 1, "to": "2026-10-07"}, headers=reader).json()
    assert sum(seventh["decisions"]["by_action"].values()) == 1
    sixth = http.get("/api/v1/kpis", params={"days": 0, "to": "2026-10-06"}, headers=reader).json()
    assert sum(sixth["decisions"]["by_action"].values()) == 4 and sixth["reconciliation"]["items"] == []
    for bad in ({"days": "-1"}, {"days": "x"}, {"to": "2026-13-01"}, {"company": "C" * 33}):
        assert http.get("/api/v1/kpis", params=bad, headers=reader).status_code == 422


def test_the_api_needs_a_token_with_the_kpis_scope(desk_app: FastAPI, http: httpx.Client) -> None:
    assert http.get("/api/v1/kpis").status_code == 401
    assert http.get("/api/v1/kpis", headers=_token(desk_app, "cases", ["cases:read"])).status_code == 403
    assert http.get("/api/v1/kpis", headers=_token(desk_app, "bi", ["kpis:read"])).status_code == 200


def test_every_role_sees_the_dashboard_with_its_charts(desk_app: FastAPI, http: httpx.Client, loaded) -> None:
    assert http.get("/dashboard", follow_redirects=False).headers["location"] == "/login?next=%2Fdashboard"
    panel = http.get("/dashboard/panel", follow_redirects=False)
    assert panel.headers["location"] == "/login?next=%2Fdashboard%2Fpanel"
    assert add_user(desk_app.state.sessions, "vic", "viewer") is None
    assert login(http, "vic", None).status_code == 303
    page = http.get("/dashboard?refresh=5")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for chart in ("chart-decisions-per-day", "chart-releases-by-company", "chart-releases-by-channel",
                  "chart-flagged-by-rule", "chart-backlog-age"):  # fmt: skip
        assert f'<svg class="chart" id="{chart}"' in page.text
    assert 'data-refresh-seconds="5"' in page.text and 'data-panel-url="/dashboard/panel?' in page.text
    assert ">DE01</option>" in page.text and ">sepa</option>" in page.text  # the filters' choices
    assert "<script>" not in page.text.split("</head>", 1)[1]  # no inline script in the body
    assert f'href="/cases/{loaded["P-M1"]}"' in page.text  # the worklist links to the case
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and XSS not in page.text
    panel = http.get("/dashboard/panel", params={"company": "DE01"})
    assert panel.status_code == 200 and "<html" not in panel.text and 'id="dashboard-stamp"' in panel.text
    assert 'id="tile-decisions">2<' in panel.text
    assert http.get("/dashboard", params={"days": "forever"}).status_code == 422


def test_hostile_names_and_amounts_are_shown_as_text_or_left_out(desk_app: FastAPI, http: httpx.Client) -> None:
    bad_amount = _record("P-X1", "x1", channel="wire", action="allow", amount="12abc", company=HOSTILE_COMPANY)
    huge = _record("P-X2", "x2", channel="wire", action="allow", amount="9" * 40)
    fine = _record("P-X3", "x3", channel=f"<b>{'c' * 40}</b>", action="allow", amount="10.00")
    _load(desk_app, [bad_amount, huge, fine])
    body = http.get("/api/v1/kpis", headers=_token(desk_app, "bi", ["kpis:read"])).json()
    assert body["screened_releases"]["payments"] == 3
    assert body["screened_releases"]["by_currency"]["USD"]["amount"] == "10.00"  # only the well-formed one
    assert add_user(desk_app.state.sessions, "vic", "viewer") is None
    login(http, "vic", None)
    page = http.get("/dashboard").text
    assert HOSTILE_COMPANY not in page and "&lt;svg onload=alert(1)&gt;" in page
    assert "<b>" not in page


def test_the_kpi_file_adds_the_platforms_view(desk_app: FastAPI, http: httpx.Client, tmp_path: Path) -> None:
    kpis = kpis_from([])
    kpis["failure_rate"]["by_channel"] = {"sepa": {"outcomes": 10, "failed": 1, "returned": 0, "rate": 0.1}}
    good = tmp_path / "kpis.json"
    good.write_bytes(orjson.dumps(kpis))
    desk_app.state.kpis_file = good
    assert add_user(desk_app.state.sessions, "vic", "viewer") is None
    login(http, "vic", None)
    page = http.get("/dashboard").text
    assert 'id="platform"' in page and "payments released" in page and 'id="chart-failure-by-channel"' in page
    api = http.get("/api/v1/kpis", headers=_token(desk_app, "bi", ["kpis:read"])).json()
    assert api["platform"]["failure_rate_by_channel"] == {"sepa": 0.1}
    good.write_bytes(b'{"schema": "paysentry.kpis/1", "period": ')  # changed on disk: read again, refused
    page = http.get("/dashboard").text
    assert 'id="platform-error"' in page and "kpis.json is refused" in page


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"[1, 2]", "not a KPI file"),
        (b'{"schema": "something/else"}', "not a KPI file"),
        (b'{"schema": "paysentry.kpis/1"}', "refused"),
        (b"\xff\xfe", "refused"),
    ],
)
def test_a_bad_kpi_file_is_refused_with_a_reason(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "kpis.json"
    path.write_bytes(content)
    summary = platform_kpis(path)
    assert summary is not None and reason in summary["error"]


def test_an_oversized_or_missing_kpi_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(MAX_KPI_FILE_BYTES + 1)
    assert "larger than" in (platform_kpis(big) or {})["error"]
    assert "cannot read" in (platform_kpis(tmp_path / "missing.json") or {})["error"]
    assert platform_kpis(None) is None


def test_the_backlog_age_counts_from_now(desk_app: FastAPI, http: httpx.Client) -> None:
    from paysentry.desk.dashboard import DashboardFilters, desk_kpis

    _load(desk_app, RECORDS)
    with desk_app.state.sessions() as session:
        now = later(2 * 24 * 60 + 60)  # an hour after the SLA case opened, a day after the mismatch
        backlog = desk_kpis(session, DashboardFilters(), now=now)["backlog"]
    assert backlog["by_age"] == {"under 1 day": 1, "1 to 3 days": 2, "3 to 7 days": 0, "over 7 days": 0}
    assert backlog["oldest_age_hours"] == pytest.approx((now - later(0)).total_seconds() / 3600, abs=0.1)
    assert timedelta(hours=backlog["oldest_age_hours"]) > timedelta(days=2)


def test_charts_escape_and_bound_their_text() -> None:
    from paysentry.desk import svgcharts

    bars = [(f"<script>{i}</script>" + "x" * 60, float(i)) for i in range(40)]
    chart = str(svgcharts.bar_chart("c1", 'title "quoted" <b>', bars))
    assert chart.count('<g class="bar">') == svgcharts.MAX_BARS
    assert "<script>" not in chart and "<b>" not in chart and "&lt;script&gt;39" in chart  # largest first
    assert "x" * 60 not in chart  # labels are cut
    assert "style=" not in chart  # the CSP allows no inline style
    ordered = str(svgcharts.bar_chart("c2", "age", [("young", 1), ("old", 5)], ordered=True))
    assert ordered.index("young") < ordered.index("old")
    days = [f"d{i}" for i in range(200)]
    columns = str(svgcharts.daily_columns("c3", "per day", days, {"allow": [1] * 200, "<i>": [0] * 200}))
    assert columns.count("<rect") == svgcharts.MAX_DAYS + 2  # one per shown day, plus the two legend keys
    first = 200 - svgcharts.MAX_DAYS  # the newest days are kept
    assert f">d{first}<" in columns and f"d{first - 1} allow" not in columns and "d199 allow: 1" in columns
    assert "<i>" not in columns
