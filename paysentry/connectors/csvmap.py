"""The YAML column mapping that turns an ERP's CSV export into contract events.

```yaml
records: payments                  # payments | vendors
type: payment.released             # one event type for every row, or by a column:
# type: {column: Status, values: {OPEN: payment.created, FREI: payment.approved, BEZAHLT: payment.released}}
encoding: cp1252                   # utf-8 (a BOM is skipped), utf-8-sig, cp1252, latin-1, iso-8859-15
delimiter: ";"
decimal: ","                       # "." or ","
thousands: "."                     # "", ".", ",", " " or "'"
date_format: "%d.%m.%Y"            # strftime codes
time_format: "%d.%m.%Y %H:%M"      # for event_time; a cell that only has a date is read with date_format
timezone: Europe/Berlin            # for times written without an offset
columns:                           # CSV header -> contract field
  Zahlungsnummer: payment_id
  Betrag: amount
constants:                         # fields the file does not carry, the same for every row
  channel: sepa
```

Checked with pydantic (unknown keys refused), every problem reported as `file:line:col: message`
through paysentry/yamlsource.py, including a mapping that leaves out a field its events require.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator
from pydantic_core import ErrorDetails
from ruamel.yaml.comments import CommentedMap

from paysentry.connectors.base import zone
from paysentry.contract import CHANNELS, EVENT_TYPES
from paysentry.yaml_messages import Loc, describe_validation_error
from paysentry.yamlsource import InvalidSource, SourceError, load_yaml, read_source, validation_errors

ContractField = Literal[
    "event_id", "event_time", "payment_id", "company_code", "vendor_id", "vendor_name", "invoice_id", "po_id",
    "amount", "currency", "channel", "payee_account", "payee_bank", "payee_country", "created_by",
    "approved_by", "due_date", "fee", "fee_currency", "status_reason", "changed_by",
]  # fmt: skip
ConstantField = Literal[
    "company_code", "currency", "channel", "payee_bank", "payee_country", "created_by", "changed_by", "fee_currency"
]
PaymentType = Literal["payment.created", "payment.approved", "payment.released", "payment.cancelled"]
VendorType = Literal["vendor.created", "vendor.updated"]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]

REQUIRED = {
    "payments": ("payment_id", "vendor_id", "amount", "currency", "event_time"),
    "vendors": ("vendor_id", "event_time"),
}


class TypeByColumn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    column: Name
    values: dict[Name, PaymentType | VendorType] = Field(min_length=1, max_length=64)


class CsvMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: Literal["payments", "vendors"]
    type: PaymentType | VendorType | TypeByColumn
    encoding: Literal["utf-8", "utf-8-sig", "cp1252", "windows-1252", "latin-1", "iso-8859-1", "iso-8859-15"] = "utf-8"
    delimiter: Annotated[str, StringConstraints(min_length=1, max_length=1)] = ","
    quotechar: Annotated[str, StringConstraints(min_length=1, max_length=1)] = '"'
    decimal: Literal[".", ","] = "."
    thousands: Literal["", ".", ",", " ", "'"] = ""
    date_format: Annotated[str, StringConstraints(min_length=2, max_length=64)] = "%Y-%m-%d"
    time_format: Annotated[str, StringConstraints(min_length=2, max_length=64)] = "%Y-%m-%dT%H:%M:%S%z"
    timezone: Annotated[str, StringConstraints(min_length=1, max_length=64)] = "UTC"
    list_separator: Annotated[str, StringConstraints(min_length=1, max_length=1)] = "|"
    columns: dict[Name, ContractField] = Field(min_length=1, max_length=64)
    constants: dict[ConstantField, Annotated[str, StringConstraints(min_length=1, max_length=64)]] = {}

    @model_validator(mode="after")
    def _consistent(self) -> CsvMapping:
        family = "payment." if self.records == "payments" else "vendor."
        types = self.type.values.values() if isinstance(self.type, TypeByColumn) else [self.type]
        wrong = sorted({t for t in types if not t.startswith(family)})
        if wrong:
            raise ValueError(f"type: {', '.join(wrong)} is not a {self.records} event type")
        if self.thousands and self.thousands == self.decimal:
            raise ValueError("thousands and decimal separators must differ")
        fields = list(self.columns.values())
        twice = sorted({f for f in fields if fields.count(f) > 1})
        if twice:
            raise ValueError(f"columns: {', '.join(twice)} mapped from more than one column")
        given = set(fields) | set(self.constants)
        missing = [name for name in REQUIRED[self.records] if name not in given]
        if missing:
            needed = ", ".join(missing)
            raise ValueError(f"columns: {needed} must be mapped (or set under constants) for {self.records}")
        both = sorted(set(fields) & set(self.constants))
        if both:
            raise ValueError(f"constants: {', '.join(both)} is also mapped from a column")
        channel = self.constants.get("channel")
        if channel is not None and channel not in CHANNELS:
            raise ValueError(f"constants.channel: {channel!r} is not one of {', '.join(CHANNELS)}")
        zone(self.timezone)
        return self


assert set(REQUIRED["payments"]) <= set(ContractField.__args__)  # type: ignore[attr-defined]
assert all(t in EVENT_TYPES for t in (*PaymentType.__args__, *VendorType.__args__))  # type: ignore[attr-defined]


def parse_mapping(text: str, path: str) -> CsvMapping:
    """The mapping in `text`, or InvalidSource with every problem as `path:line:col: message`."""
    root = load_yaml(text, path)
    if not isinstance(root, CommentedMap):
        raise InvalidSource([SourceError(path, 1, 1, "a mapping file is a YAML mapping (records, type, columns...)")])
    try:
        return CsvMapping.model_validate(_plain(root))
    except ValidationError as exc:

        def describe(error: ErrorDetails) -> tuple[Loc, str]:
            loc = _document_loc(root, error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            about = _ABOUT_KEY.match(message)
            if not loc and about and about.group(1) in root:  # a check across keys: at the key it names
                return (about.group(1),), message
            return describe_validation_error(error, "the mapping", CsvMapping, loc=loc)

        raise InvalidSource(validation_errors(exc, root, path, describe, containers_at_key=True)) from None


_ABOUT_KEY = re.compile(r"(\w+)[.:]")
_TYPE_NAME = re.compile(r"[\[(]|^(function-|literal|str|int|dict|list|TypeByColumn)")


def _document_loc(root: Any, loc: tuple[Any, ...]) -> Loc:
    """A pydantic error location without the parts that are type names rather than keys of the file."""
    kept: list[Any] = []
    node = root
    for part in loc:
        in_map = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_map or in_list:
            node = node[part]
            kept.append(part)
        elif isinstance(part, str) and not _TYPE_NAME.search(part):
            kept.append(part)  # a missing or unknown key: named in the message
            node = None
    return tuple(kept)


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_mapping(path: Path) -> CsvMapping:
    return parse_mapping(read_source(path), str(path))
