"""The demo ends in the desk: `paysentry demo --days 10` prints the headline KPIs, writes the KPI
report, fills the desk's database (idempotently) and says how to open it. Then the dashboard, in
headless Chromium on that database: charts, filters, the reconciliation worklist, a live refresh, and
a screenshot for the README (docs/screenshots/desk-dashboard.png)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import orjson
import pyotp
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from paysentry.cli import app as paysentry_app
from paysentry.desk import importer
from paysentry.desk.app import create_app
from paysentry.desk.cli import desk_app
from paysentry.desk.dashboard import DashboardFilters, desk_kpis
from paysentry.desk.db import Case, DecisionRecord
from paysentry.desk.settings import DeskSettings
from tests.desk.conftest import APPROVALS
from tests.desk.support import PASSWORD, LiveServer, add_user
from tests.desk.test_browser import CHROMEDRIVER, CHROMIUM, _click_and_load, _screenshot, browser  # noqa: F401

runner = CliRunner()


@dataclass(frozen=True)
class DemoRun:
    workdir: Path
    database_url: str
    first_output: str
    second_output: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """Ten simulated days through `paysentry demo`, twice, into a desk database of its own."""
    workdir = tmp_path_factory.mktemp("demo")
    database_url = f"sqlite:///{workdir}/desk.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PAYSENTRY_DATABASE_URL", database_url)
        patch.delenv("PAYSENTRY_DESK_KPIS_FILE", raising=False)
        runs = [runner.invoke(paysentry_app, ["demo", "--workdir", str(workdir), "--days", "10"]) for _ in range(2)]
    for run in runs:
        assert run.exit_code == 0, run.output[-3000:]
    yield DemoRun(workdir, database_url, runs[0].output, runs[1].output)


def _decisions(workdir: Path) -> list[dict]:
    return [orjson.loads(line) for line in (workdir / "decisions.jsonl").read_bytes().splitlines() if line.strip()]


def test_the_demo_prints_the_headline_kpis_and_writes_the_report(demo: DemoRun) -> None:
    for line in ("payments released", "failure + return rate", "amount mismatches", "orphan settlements"):
        assert line in demo.first_output
    kpis = orjson.loads((demo.workdir / "kpis" / "kpis.json").read_bytes())
    assert kpis["payments"]["released"] > 0 and f"{kpis['payments']['released']:,}" in demo.first_output
    assert (demo.workdir / "kpis" / "report.html").stat().st_size > 0


def test_the_demo_fills_the_desk_once_and_says_how_to_open_it(demo: DemoRun) -> None:
    records = _decisions(demo.workdir)
    flagged = {r["payment_id"] for r in records if r["action"] != "allow"}
    on_flagged = sum(1 for r in records if r["payment_id"] in flagged)
    assert f"imported {on_flagged} decisions on the flagged payments (0 already there)" in demo.first_output
    assert f"imported 0 decisions on the flagged payments ({on_flagged} already there)" in demo.second_output
    for text in ("paysentry users add lead1 --role lead", "paysentry web", "http://127.0.0.1:8080/dashboard",
                 f"PAYSENTRY_DESK_KPIS_FILE={demo.workdir / 'kpis' / 'kpis.json'}"):  # fmt: skip
        assert text in demo.first_output
    app = create_app(DeskSettings(database_url=demo.database_url, approvals_path=APPROVALS))
    try:
        with app.state.sessions() as session:
            assert set(session.scalars(select(Case.payment_id))) == flagged
            assert session.scalar(select(func.count()).select_from(DecisionRecord)) == on_flagged
    finally:
        app.state.engine.dispose()


def test_without_the_desk_the_demo_touches_no_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYSENTRY_DATABASE_URL", f"sqlite:///{tmp_path}/never.db")
    result = runner.invoke(paysentry_app, ["demo", "--workdir", str(tmp_path / "d"), "--days", "1", "--no-desk"])
    assert result.exit_code == 0, result.output[-2000:]
    assert "payments released" in result.output and "paysentry web" not in result.output
    assert not (tmp_path / "never.db").exists()


@pytest.fixture(scope="module")
def full_desk(demo: DemoRun) -> Iterator[str]:
    """The demo's database with every decision of the run imported too (`paysentry cases import`)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PAYSENTRY_DATABASE_URL", demo.database_url)
        result = runner.invoke(desk_app, ["cases", "import", str(demo.workdir / "decisions.jsonl")])
    assert result.exit_code == 0, result.output[-2000:]
    yield demo.database_url


def test_the_desk_counts_the_releases_the_analytics_counted(demo: DemoRun, full_desk: str) -> None:
    # Two code paths: the analytics report reads the events, the desk sums its decisions in SQL.
    kpis = orjson.loads((demo.workdir / "kpis" / "kpis.json").read_bytes())
    app = create_app(DeskSettings(database_url=full_desk, approvals_path=APPROVALS))
    try:
        with app.state.sessions() as session:
            desk = desk_kpis(session, DashboardFilters(days=0))
    finally:
        app.state.engine.dispose()
    releases = desk["screened_releases"]
    assert releases["payments"] == kpis["payments"]["released"]
    assert {c: Decimal(v["amount"]) for c, v in releases["by_currency"].items()} == {
        c: Decimal(v) for c, v in kpis["amount_by_currency"].items()
    }
    assert releases["payments_by_company"] == {c: v["payments"] for c, v in kpis["by"]["company"].items()}
    recon = desk["reconciliation"]["counts"]
    assert recon["amount mismatch"] == kpis["reconciliation"]["amount_mismatch"]
    assert recon["unsettled past SLA"] == kpis["reconciliation"]["unsettled_past_sla"]


def test_the_dashboard_in_the_browser(browser, demo: DemoRun, full_desk: str, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    # .ci/install-services installs them: a missing browser fails the test rather than skipping it
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "chromium and chromium-driver are not installed"
    app = create_app(DeskSettings(database_url=full_desk, approvals_path=APPROVALS))
    app.state.kpis_file = demo.workdir / "kpis" / "kpis.json"
    secret = add_user(app.state.sessions, "lea", "lead")
    driver = browser
    try:
        with LiveServer(app) as server:
            driver.get(server.url + "/dashboard?refresh=2")
            assert driver.current_url.endswith("/login?next=%2Fdashboard%3Frefresh%3D2")
            driver.find_element(By.ID, "name").send_keys("lea")
            driver.find_element(By.ID, "password").send_keys(PASSWORD)
            driver.find_element(By.ID, "code").send_keys(pyotp.TOTP(secret).now())
            _click_and_load(driver, driver.find_element(By.ID, "login"))
            assert driver.current_url.endswith("/dashboard?refresh=2")  # back where the link pointed
            _click_and_load(driver, driver.find_element(By.ID, "nav-dashboard"))
            assert driver.current_url.endswith("/dashboard")

            charts = {e.get_attribute("id") for e in driver.find_elements(By.CSS_SELECTOR, "svg.chart")}
            assert {"chart-decisions-per-day", "chart-releases-by-company", "chart-releases-by-channel",
                    "chart-flagged-by-rule", "chart-backlog-age", "chart-failure-by-channel"} <= charts  # fmt: skip
            assert driver.find_elements(By.CSS_SELECTOR, "#chart-decisions-per-day rect")
            companies = [o.text for o in Select(driver.find_element(By.ID, "filter-company")).options]
            assert companies == ["all", "CN01", "DE01", "US01"]
            assert "sepa" in [o.text for o in Select(driver.find_element(By.ID, "filter-channel")).options]
            worklist = driver.find_elements(By.CSS_SELECTOR, "#worklist a.case-link")
            assert worklist, "the demo has settlement exceptions"
            assert "payments released" in driver.find_element(By.ID, "platform").text
            driver.set_window_size(1440, 1500)  # the whole dashboard in the README's picture
            _screenshot(driver, "desk-dashboard.png", tmp_path)

            # Live: a new flagged decision shows up without reloading the page.
            flagged = int(driver.find_element(By.ID, "tile-flagged").text.replace(",", ""))
            with app.state.sessions() as session:
                newest = session.scalars(select(DecisionRecord).order_by(DecisionRecord.event_time.desc())).first()
                assert newest is not None
                record = {**newest.record, "event_id": "live-1", "payment_id": "PAY-LIVE-1", "action": "hold"}
                assert importer.import_decision(session, record, approvals=app.state.approvals)
                session.commit()
            WebDriverWait(driver, 60).until(
                lambda d: d.find_element(By.ID, "tile-flagged").text.replace(",", "") == str(flagged + 1)
            )
            assert int(driver.find_element(By.ID, "dashboard-live").get_attribute("data-refreshes")) >= 1

            # A filter reloads the page with only that company's figures.
            Select(driver.find_element(By.ID, "filter-company")).select_by_visible_text("DE01")
            _click_and_load(driver, driver.find_element(By.ID, "apply-filters"))
            assert "company=DE01" in driver.current_url
            with app.state.sessions() as session:
                expected = desk_kpis(session, DashboardFilters(company="DE01"))["decisions"]["by_action"]
            shown = int(driver.find_element(By.ID, "tile-decisions").text.replace(",", ""))
            assert shown == sum(expected.values()) > 0

            # The worklist leads to the case.
            driver.get(server.url + "/dashboard")
            link = driver.find_elements(By.CSS_SELECTOR, "#worklist a.case-link")[0]
            href = link.get_attribute("href")
            _click_and_load(driver, link)
            assert driver.current_url == href and driver.find_element(By.ID, "case-state")
    finally:
        app.state.engine.dispose()
