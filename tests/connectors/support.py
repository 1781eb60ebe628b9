"""Shared by the connector tests: the sample files, converting them, and the check that no clear
account leaks into what a connector writes about a record."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import orjson

from paysentry.connectors.base import Conversion, Limits, PaymentIndex
from paysentry.connectors.formats import Format, convert_bytes, parse_format

SAMPLES = Path(__file__).parent / "samples"
MAPPINGS = Path(__file__).parents[2] / "config" / "connectors"
# Every account number in the samples: none may appear in a rejection, a reason or a console line.
SAMPLE_ACCOUNTS = (
    "DE89370400440532013000",
    "DE88370400440532013000",
    "DE02120300000000202051",
    "SE4550000000058398257466",
    "FR1420041010050500013M02606",
    "FR1420041010050500013M02607",
    "FR7630006000011234567890189",
    "GB29NWBK60161331926819",
    "GB33BUKB20201555555555",
)


def convert(
    name: str, fmt: str = "auto", *, index: PaymentIndex | None = None, limits: Limits | None = None,
    data: bytes | None = None,
) -> Conversion:  # fmt: skip
    chosen: Format = parse_format(fmt)
    raw = (SAMPLES / name).read_bytes() if data is None else data
    return convert_bytes(raw, name, chosen, tz=UTC, limits=limits or Limits(), index=index)


def by_payment(conversion: Conversion) -> dict[str, dict]:
    return {event["payment_id"]: event for event in conversion.events}


def assert_no_clear_account(text: str | bytes) -> None:
    shown = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    for account in SAMPLE_ACCOUNTS:
        assert account not in shown, "a clear account number was written"
        assert account[-10:] not in shown, "a clear account number was written"


def refused(conversion: Conversion) -> str:
    """Why the whole file was refused (it must have been)."""
    assert conversion.refused is not None and conversion.events == []
    return conversion.refused


def rejections_text(conversion: Conversion) -> bytes:
    return b"\n".join(orjson.dumps(r.to_dict()) for r in conversion.rejections)
