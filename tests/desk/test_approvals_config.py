"""The approval policies file: what it means, and how a broken or hostile one is refused (file:line)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from paysentry.desk.app import create_app
from paysentry.desk.approvals import ApprovalsError, load_approvals, load_or_builtin, next_requirement
from paysentry.desk.settings import DeskSettings
from tests.desk.conftest import APPROVALS


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "approvals.yaml"
    path.write_text(text)
    return path


def test_the_shipped_file_loads_and_means_what_it_says() -> None:
    config = load_approvals(APPROVALS)
    assert config.policy_for("US01", "hold", Decimal("50000.01"), "USD").name == "large holds need two leads"
    assert config.policy_for("US01", "hold", Decimal("50000"), "USD").name == "one analyst"
    assert config.policy_for("US01", "block", Decimal("1"), "USD").require[0].role == "treasury"
    assert config.policy_for("CN01", "hold", Decimal("60000"), "CNY").name == "one analyst"
    assert config.policy_for("ZZ99", "review", None, None).name == "one analyst"


def test_payment_run_gives_the_due_time() -> None:
    run = load_approvals(APPROVALS).payment_run("DE01")  # Tuesdays and Fridays 09:00 Berlin
    friday_noon = datetime(2026, 10, 9, 10, 0, tzinfo=UTC)
    assert run.next_after(friday_noon) == datetime(2026, 10, 13, 7, 0, tzinfo=UTC)  # Tuesday 09:00 CEST


def test_unknown_keys_and_bad_values_are_refused_with_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "default:\n  policies:\n    - name: x\n      require: [{role: boss}]\n      extra: 1\n")
    with pytest.raises(ApprovalsError) as caught:
        load_approvals(path)
    lines = str(caught.value).splitlines()
    assert lines[0] == f"{path}:4:24: role: 'boss' is not one of analyst, lead or treasury"
    assert lines[1] == f"{path}:5:7: unknown key 'extra' in company 'default'"


def test_a_misspelt_key_gets_a_suggestion(tmp_path: Path) -> None:
    with pytest.raises(ApprovalsError, match="did you mean 'policies'"):
        load_approvals(_write(tmp_path, "US01:\n  polices: []\n"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("default: !!python/object/apply:os.system ['id']\n", "unsupported YAML tag"),
        (
            "a: &a [1,1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
            "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
            "d: [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n",
            "aliases expand",
        ),
        ("default: {payment_run: {timezone: Mars/Olympus}}\n", "unknown timezone"),
        ("default: {payment_run: {weekdays: [7]}}\n", "weekdays"),
        ("- 1\n- 2\n", "expected a mapping"),
        ("default: {policies: [{name: x, require: [{role: lead, count: 99}]}]}\n", "count"),
        ("default:\n  x: 1\n  x: 2\n", "duplicate"),
    ],
)
def test_hostile_or_broken_files_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ApprovalsError) as caught:
        load_approvals(_write(tmp_path, text))
    assert expected in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path / "approvals.yaml") + ":")


def test_a_file_too_large_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ApprovalsError, match="larger than"):
        load_approvals(_write(tmp_path, "# " + "x" * (1024 * 1024 + 10) + "\n"))


def test_missing_file_means_the_built_in_policy(tmp_path: Path) -> None:
    config = load_or_builtin(tmp_path / "none.yaml")
    assert config.policy_for("US01", "block", Decimal("1e9"), "USD").require[0].role == "analyst"


def test_the_app_does_not_start_on_a_broken_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "default: {policies: [{name: x}]}\n")
    settings = DeskSettings(database_url=f"sqlite:///{tmp_path}/d.db", approvals_path=path)
    with pytest.raises(ApprovalsError, match="require"):
        create_app(settings)


def test_one_person_gives_one_approval() -> None:
    policy = load_approvals(APPROVALS).policy_for("US01", "hold", Decimal("60000"), "USD")
    assert next_requirement(policy, [], "lea", "lead") == "lead"
    with pytest.raises(PermissionError, match="already approved"):
        next_requirement(policy, [("lea", "lead")], "lea", "lead")
    with pytest.raises(PermissionError, match="cannot give"):
        next_requirement(policy, [("lea", "lead")], "ana", "analyst")
