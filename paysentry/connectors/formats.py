"""Which connector reads a file: by the name given, or found from the file itself.

`auto` looks at the start of the file: an ISO 20022 namespace names the message and its version
(pain.001, pain.002, camt.053, camt.054), statement tags (`:20:`, `:25:`, `:61:`) an MT940; a CSV file
needs its mapping (`csv:MAPPING.yaml`), since nothing in a CSV says what its columns mean.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from paysentry.connectors import camt, csvread, mt940, pain001, pain002
from paysentry.connectors.base import Conversion, FileRefused, Limits, PaymentIndex
from paysentry.connectors.csvmap import CsvMapping, load_mapping
from paysentry.connectors.xmlsafe import message_name

NAMES = ("auto", "pain.001", "pain.002", "camt.053", "camt.054", "mt940", "csv:MAPPING")
_XML_CONVERTERS: dict[str, Callable[..., Conversion]] = {
    "pain.001": pain001.convert,
    "pain.002": pain002.convert,
    "camt.053": camt.convert,
    "camt.054": camt.convert,
}
_HEAD_BYTES = 4096


class FormatError(ValueError):
    """A format name that is not known, or a mapping that cannot be used (the message says which)."""


@dataclass(frozen=True)
class Format:
    """A chosen format: 'auto', one of the message names, 'mt940', or a CSV mapping."""

    name: str
    mapping: CsvMapping | None = None


def parse_format(text: str) -> Format:
    """A --format value; `csv:PATH` loads and checks the mapping (InvalidSource for a bad one)."""
    if text.startswith("csv:"):
        path = Path(text[4:])
        return Format(f"csv:{path.name}", load_mapping(path))
    if text not in NAMES[:-1]:
        raise FormatError(f"unknown format {text!r}: one of {', '.join(NAMES)}")
    return Format(text)


def detect(data: bytes, name: str) -> str:
    """The message name ('pain.001.001.03', 'camt.054.001.02', 'mt940') of a file, or FileRefused."""
    head = data[:_HEAD_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 XML: look for the namespace in its text
        head = head.decode("utf-16", "replace").encode("utf-8")
    found = message_name(head)
    if found is not None:
        return found
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        raise FileRefused("XML without an ISO 20022 pain.001/pain.002/camt.053/camt.054 namespace")
    if mt940.looks_like_mt940(head.decode("latin-1")):
        return "mt940"
    if name.lower().endswith(".csv"):
        raise FileRefused("a CSV file needs its column mapping: --format csv:MAPPING.yaml")
    raise FileRefused("not a known payment file (pain.001, pain.002, camt.053, camt.054, MT940 or mapped CSV)")


def read_bounded(path: Path, limits: Limits) -> bytes:
    """The file's bytes, or FileRefused when it is larger than the limit (read no further than that)."""
    with path.open("rb") as handle:
        data = handle.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        raise FileRefused(f"file is larger than the {limits.max_file_bytes} bytes allowed")
    return data


def convert_bytes(
    data: bytes, source: str, chosen: Format, *, tz: tzinfo, limits: Limits, index: PaymentIndex | None = None
) -> Conversion:
    """Convert one file's bytes; a file that cannot be read at all comes back refused, never raised."""
    try:
        if chosen.mapping is not None:
            return csvread.convert(data, source, chosen.mapping, limits=limits, name=chosen.name)
        message = detect(data, source)
        if chosen.name != "auto" and not message.startswith(chosen.name):
            raise FileRefused(f"the file is a {message}, not a {chosen.name}")
        if message == "mt940":
            return mt940.convert(data, source, message, tz=tz, limits=limits, index=index)
        converter = _XML_CONVERTERS.get(message[:8])
        if converter is None:
            raise FileRefused(f"{message} messages are not converted (pain.001, pain.002, camt.053, camt.054 are)")
        return converter(data, source, message, tz=tz, limits=limits, index=index)
    except FileRefused as exc:
        refused = Conversion(source, chosen.name)
        refused.refuse(exc)
        return refused


def convert_path(
    path: Path, chosen: Format, *, tz: tzinfo, limits: Limits, index: PaymentIndex | None = None
) -> Conversion:
    try:
        data = read_bounded(path, limits)
    except FileRefused as exc:
        refused = Conversion(str(path), chosen.name)
        refused.refuse(exc)
        return refused
    except OSError as exc:
        refused = Conversion(str(path), chosen.name)
        refused.refuse(FileRefused(f"cannot read: {exc.strerror or exc}"))
        return refused
    return convert_bytes(data, str(path), chosen, tz=tz, limits=limits, index=index)
