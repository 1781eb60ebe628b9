"""IBAN and BIC checks with schwifty: checksum, country format, national checks and bank lookup.

A failed check never stops a conversion: a payment to an account with a wrong checksum is exactly what
the engine should see. The outcome travels with the event as `payee_check` (kept by ingest under
`extra`): `valid` is False when the IBAN or the BIC is malformed, and `problems` names each finding by a
short code. Nothing in the outcome shows the account: codes and bank names only.

Codes: `iban_checksum`, `iban_length`, `iban_structure`, `iban_country`, `iban_bank_code`,
`iban_national_checksum` (make `valid` False); `bic_structure`, `bic_country` (make `valid` False);
`bic_unknown` (well-formed, not in schwifty's bank registry), `bic_mismatch` (the BIC's bank is not the
IBAN's bank, by the registry), `bic_country_mismatch` (notes only).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Any

from schwifty import BIC, IBAN
from schwifty import exceptions as swx

from paysentry.iban import IBAN_PROBLEMS as _IBAN_PROBLEMS
from paysentry.iban import looks_like_iban

_BIC_PROBLEMS: tuple[tuple[type[Exception], str], ...] = (
    (swx.InvalidCountryCode, "bic_country"),
    (swx.InvalidLength, "bic_structure"),
    (swx.InvalidStructure, "bic_structure"),
)
NOTES_ONLY = frozenset({"bic_unknown", "bic_mismatch", "bic_country_mismatch"})


def _problem(exc: Exception, table: tuple[tuple[type[Exception], str], ...], default: str) -> str:
    for kind, code in table:
        if isinstance(exc, kind):
            return code
    return default


def check_bank_details(account: str | None, bic: str | None) -> dict[str, Any] | None:
    """The outcome of checking an IBAN-shaped account and a BIC, or None when there is nothing to check
    (no BIC and an account that is not an IBAN: national formats are not checked)."""
    outcome = _checked(account, bic)
    return None if outcome is None else {**outcome, "problems": list(outcome["problems"])}


@lru_cache(maxsize=4096)  # a payment run pays the same vendors' accounts over and over
def _checked(account: str | None, bic: str | None) -> dict[str, Any] | None:
    iban_like = account is not None and looks_like_iban(account)
    if not iban_like and not bic:
        return None
    problems: list[str] = []
    outcome: dict[str, Any] = {}
    iban: IBAN | None = None
    if iban_like and account is not None:
        try:
            with warnings.catch_warnings():  # "no national checksum known for this country" is not a finding
                warnings.simplefilter("ignore")
                iban = IBAN(account, validate_bban=True)
        except swx.SchwiftyException as exc:
            problems.append(_problem(exc, _IBAN_PROBLEMS, "iban_structure"))
        except ValueError:
            problems.append("iban_structure")
        if iban is not None:
            bank = _bank_of(iban)
            if bank:
                outcome["bank"] = bank
    if bic:
        problems += _check_bic(bic, iban)
    outcome["valid"] = not any(code not in NOTES_ONLY for code in problems)
    outcome["problems"] = problems
    return outcome


def _bank_of(iban: IBAN) -> str | None:
    try:
        name = iban.bank_name
    except (swx.SchwiftyException, ValueError, KeyError, AttributeError):
        return None
    return str(name)[:128] if name else None


def _check_bic(text: str, iban: IBAN | None) -> list[str]:
    try:
        bic = BIC(text)
    except swx.SchwiftyException as exc:
        return [_problem(exc, _BIC_PROBLEMS, "bic_structure")]
    except ValueError:
        return ["bic_structure"]
    notes = []
    try:
        if not bic.exists:
            notes.append("bic_unknown")
    except (swx.SchwiftyException, ValueError, KeyError):
        notes.append("bic_unknown")
    if iban is not None:
        if iban.country_code != bic.country_code:
            notes.append("bic_country_mismatch")
        else:
            expected = _iban_bic(iban)
            if expected is not None and str(expected)[:6] != str(bic)[:6]:
                notes.append("bic_mismatch")
    return notes


def _iban_bic(iban: IBAN) -> str | None:
    try:
        found = iban.bic
    except (swx.SchwiftyException, ValueError, KeyError):
        return None
    return str(found) if found else None
