"""The tariffs file: the shipped one loads, fees and eligibility follow the documented formula, and every
way to get the file wrong is refused with file:line:col and what is expected."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from paysentry.analytics.tariffs import Tariff, default_tariffs_path, load_tariffs
from paysentry.yamlsource import InvalidSource

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "channels.yaml"


def test_shipped_tariffs_load() -> None:
    book = load_tariffs(SHIPPED)
    assert {t.channel for t in book.channels} >= {"sepa", "ach", "wire", "cips", "swift"}
    assert set(book.companies) == {"CN01", "US01", "DE01"}
    assert default_tariffs_path().resolve() == SHIPPED


def test_fee_formula_and_eligibility() -> None:
    tariff = Tariff(
        name="t",
        channel="swift",
        currencies=["EUR"],
        fixed_fee=Decimal("1"),
        percent_fee=Decimal("0.1"),
        min_fee=Decimal("15"),
        max_fee=Decimal("75"),
        fx_margin_percent=Decimal("0.5"),
        payee_countries=["GB"],
        max_amount=Decimal("100000"),
    )
    assert tariff.fee(Decimal("1000"), "EUR", "EUR") == Decimal("15.00")  # 1 + 1 -> the minimum
    assert tariff.fee(Decimal("50000"), "EUR", "EUR") == Decimal("51.00")
    assert tariff.fee(Decimal("90000"), "EUR", "EUR") == Decimal("75.00")  # capped
    assert tariff.fee(Decimal("10000"), "EUR", "USD") == Decimal("65.00")  # 15 + FX margin 50
    ok = {"currency": "EUR", "company": "DE01", "country": "GB", "amount": Decimal("10"), "enrolled": False}
    assert tariff.eligible(**ok)  # type: ignore[arg-type]
    assert not tariff.eligible(**{**ok, "country": "US"})  # type: ignore[arg-type]
    assert not tariff.eligible(**{**ok, "currency": "USD"})  # type: ignore[arg-type]
    assert not tariff.eligible(**{**ok, "amount": Decimal("100000.01")})  # type: ignore[arg-type]
    wallet = Tariff(name="w", channel="alipay", currencies=["CNY"], needs_enrolment=True)
    assert not wallet.eligible(currency="CNY", company=None, country="CN", amount=Decimal(1), enrolled=False)
    assert wallet.eligible(currency="CNY", company=None, country="CN", amount=Decimal(1), enrolled=True)


GOOD_TARIFF = "  - name: a\n    channel: sepa\n    currencies: [EUR]\n"

BAD_FILES = [
    ("channels:\n" + GOOD_TARIFF + "    fixd_fee: 1\n", 5, 5, "unknown key 'fixd_fee'"),
    ("channels:\n" + GOOD_TARIFF + "    cutoff: '25:00'\n", 5, 13, "cutoff must be a time like"),
    ("channels:\n  - name: a\n    channel: pigeon\n    currencies: [EUR]\n", 3, 14, "pigeon"),
    ("channels:\n  - name: a\n    channel: sepa\n    currencies: [euro]\n", 4, 18, "channels.0.currencies.0: String"),
    ("channels:\n  - name: a\n    channel: sepa\n", 2, 5, "missing required key 'currencies'"),
    ("companies: {}\n", 1, 1, "missing required key 'channels'"),
    ("amount_bands: [10, 5]\nchannels:\n" + GOOD_TARIFF, 1, 1, "strictly ascending"),
    ("companies:\n  X: {currency: EUR, timezone: Mars/Base}\nchannels:\n" + GOOD_TARIFF, 2, 32, "unknown timezone"),
    ("channels:\n" + GOOD_TARIFF + "    fixed_fee: -1\n", 5, 16, "greater than or equal to 0"),
    ("channels:\n" + GOOD_TARIFF + GOOD_TARIFF, 1, 1, "unique"),
    ("channels: [\n", 2, 1, "invalid YAML"),
    ("channels: !!python/object/apply:os.system ['true']\n", 1, 11, "unsupported YAML tag"),
    ("- just\n- a list\n", 1, 1, "expected a mapping"),
    ("# nothing but a comment\n", 1, 1, "expected a mapping with amount_bands, companies and channels"),
    (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
        4,
        0,
        "aliases",
    ),
]


@pytest.mark.parametrize(("text", "line", "col", "message"), BAD_FILES)
def test_bad_files_name_the_place(tmp_path: Path, text: str, line: int, col: int, message: str) -> None:
    path = tmp_path / "channels.yaml"
    path.write_text(text)
    with pytest.raises(InvalidSource) as caught:
        load_tariffs(path)
    first = caught.value.errors[0]
    assert first.path == str(path)
    assert first.line == line, str(caught.value)
    if col:
        assert first.col == col, str(caught.value)
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"{path}:{line}:")


def test_oversized_and_unreadable_files(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (1024 * 1024 + 10) + b"\n")
    with pytest.raises(InvalidSource, match=r"big.yaml:1:1: file is larger than"):
        load_tariffs(big)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidSource, match="not UTF-8"):
        load_tariffs(binary)
    with pytest.raises(InvalidSource, match=r"missing.yaml:1:1: cannot read: No such file"):
        load_tariffs(tmp_path / "missing.yaml")
