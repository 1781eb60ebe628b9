"""The desk as a person uses it, in headless Chromium against a live server: log in with password and
TOTP, open the queue and a case, read why it was stopped, release one case and reject another, find
both in the audit log, and see a vendor named `<script>alert(1)</script>` shown as text.

Screenshots of the queue and of a case go to docs/screenshots/ (shown in the README) and to the
test's temporary folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import select

from paysentry.desk import importer
from paysentry.desk.app import create_app
from paysentry.desk.db import Case
from paysentry.desk.settings import DeskSettings
from tests.desk.conftest import APPROVALS, REPO
from tests.desk.support import PASSWORD, LiveServer, add_user, decision

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
XSS = "<script>alert(1)</script>"
SCREENSHOTS = REPO / "docs" / "screenshots"

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()), reason="chromium and chromedriver are not installed"
)

# A small but varied queue, worded like the engine's decisions.
START = datetime(2026, 10, 6, 8, 0, tzinfo=UTC)
SCENES = [
    (
        "PAY-US01-600206",
        "hold",
        "high",
        "7370.00",
        "USD",
        "US01",
        "V48847",
        "Ironwood Office Solutions Corp.",
        "duplicate_payment",
        "invoice 811571 for 7,370.00 USD to vendor V48847 was already paid as PAY-US01-600183 0.1 days ago",
    ),
    (
        "PAY-DE01-800311",
        "block",
        "critical",
        "48210.00",
        "EUR",
        "DE01",
        "V77120",
        "Rheinmetall Logistik GmbH",
        "bank_change_then_pay",
        "payee account changed 2 days ago and this is the first payment to it (48,210.00 EUR)",
    ),
    (
        "PAY-CN01-300186",
        "review",
        "low",
        "462561.44",
        "CNY",
        "CN01",
        "V55812",
        "Beijing Xinyu Logistics Co., Ltd.",
        "just_under_approval_limit",
        "462,561.44 CNY is 92.5% of the approval limit of 500,000.00 CNY",
    ),
    (
        "PAY-US01-600412",
        "review",
        "medium",
        "1250.00",
        "USD",
        "US01",
        "V31337",
        XSS,
        "new_vendor_first_payment",
        "first payment to vendor V31337, created 1 day ago",
    ),
    (
        "PAY-US01-600450",
        "hold",
        "high",
        "98000.00",
        "USD",
        "US01",
        "V20001",
        "Summit Industrial Supply",
        "amount_outlier",
        "98,000.00 USD is 14.2x vendor V20001's median",
    ),
]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1440,1000", f"--user-data-dir={tmp_path / 'chromium-profile'}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(15)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[LiveServer, dict[str, int], str]]:
    app = create_app(DeskSettings(database_url=f"sqlite:///{tmp_path}/desk.db", approvals_path=APPROVALS))
    secret = add_user(app.state.sessions, "lea", "lead")
    assert secret is not None
    with app.state.sessions() as session:
        for index, (payment, action, severity, amount, currency, company, vendor, name, rule, reason) in enumerate(
            SCENES
        ):
            record = decision(payment, f"sim-{index}", action=action, amount=amount, company=company, vendor_id=vendor,
                              vendor_name=name, rule_id=rule, event_time=START + timedelta(hours=index),
                              account=f"****{4100 + index}", currency=currency, severity=severity)  # fmt: skip
            record["rule_hits"][0]["reason"] = reason
            importer.import_decision(session, record, approvals=app.state.approvals)
        for days in range(1, 6):  # the vendor's earlier payments, all allowed
            importer.import_decision(session, decision(f"PAY-US01-5990{days}", f"hist-{days}", action="allow",
                                                    amount=f"{900 + days * 40}.00", vendor_id="V31337",
                                                    event_time=START - timedelta(days=days)))  # fmt: skip
        session.commit()
        ids = {c.payment_id: c.id for c in session.scalars(select(Case))}
    with LiveServer(app) as server:
        yield server, ids, secret
    app.state.engine.dispose()


def _screenshot(driver, name: str, tmp_path: Path) -> None:
    target = tmp_path / name
    assert driver.save_screenshot(str(target))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(target, SCREENSHOTS / name)


def _click_and_load(driver, element) -> None:
    """Click something that loads a new page, and wait until the old page is gone."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 60).until(lambda _: _is_gone(page))


def _is_gone(page) -> bool:
    """Whether the old page has left the document. While a navigation swaps documents chromedriver may
    answer "node does not belong to the document" instead of a stale-element error: gone all the same."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        page.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in (error.msg or ""):
            return True
        raise
    return False


def test_review_a_queue_in_the_browser(browser, desk, tmp_path: Path) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    server, ids, secret = desk
    driver = browser
    driver.get(server.url + "/cases")
    assert driver.current_url.endswith("/login")
    driver.find_element(By.ID, "name").send_keys("lea")
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.ID, "code").send_keys(pyotp.TOTP(secret).now())
    _click_and_load(driver, driver.find_element(By.ID, "login"))

    assert driver.current_url.endswith("/cases")
    rows = driver.find_elements(By.CSS_SELECTOR, "#cases tbody tr")
    assert len(rows) == len(SCENES)
    assert XSS in driver.find_element(By.ID, "cases").text  # shown as text, not run
    _screenshot(driver, "desk-queue.png", tmp_path)

    release_id = ids["PAY-US01-600206"]
    _click_and_load(driver, driver.find_element(By.CSS_SELECTOR, f"a.case-link[href='/cases/{release_id}']"))
    explanation = driver.find_element(By.ID, "explanation").text
    assert "duplicate_payment" in explanation and "was already paid as PAY-US01-600183" in explanation
    assert "****4100" in driver.find_element(By.ID, "payment").text
    _screenshot(driver, "desk-case.png", tmp_path)
    driver.find_element(By.ID, "release-reason").send_keys("second invoice is a credit note, checked with AP")
    _click_and_load(driver, driver.find_element(By.ID, "release"))
    assert driver.find_element(By.ID, "case-state").text == "released"

    reject_id = ids["PAY-US01-600412"]
    driver.get(f"{server.url}/cases/{reject_id}")
    assert driver.find_element(By.ID, "vendor-name").text == XSS
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - reading it is how Selenium asks whether one is open
    assert "first payment to vendor V31337" in driver.find_element(By.ID, "explanation").text
    assert len(driver.find_elements(By.CSS_SELECTOR, "#history tbody tr")) == 6  # this payment and 5 earlier ones
    driver.find_element(By.ID, "reject-reason").send_keys("vendor unknown to purchasing")
    _click_and_load(driver, driver.find_element(By.ID, "reject"))
    assert driver.find_element(By.ID, "case-state").text == "rejected"

    _click_and_load(driver, driver.find_element(By.ID, "nav-audit"))
    audit = driver.find_element(By.ID, "audit").text
    assert f"case.released case:{release_id}" in audit
    assert f"case.rejected case:{reject_id}" in audit
    assert "login" in audit
