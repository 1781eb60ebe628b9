"""Which connector reads a file: by the name given, or found from the file itself.

`auto` looks at the start of the file: an ISO 20022 namespace names the message and its version
(pain.001, pain.002, camt.053, camt.054), statement tags (`:20:`, `:25:`, `:61:`) an MT940; a CSV file
needs its mapping (`csv:MAPPING.yaml`), since nothing in a CSV says what its columns mean.

Files are converted as streams (`stream_file`, `stream_path`): memory does not grow with the file.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import Any, BinaryIO

from paysentry.connectors import camt, csvread, mt940, pain001, pain002
from paysentry.connectors.base import Conversion, FileRefused, Limits, PaymentIndex
from paysentry.connectors.csvmap import CsvMapping, load_mapping
from paysentry.connectors.xmlsafe import message_name

NAMES = ("auto", "pain.001", "pain.002", "camt.053", "camt.054", "mt940", "csv:MAPPING")
_STREAMS: dict[str, Callable[..., Iterator[dict[str, Any]]]] = {
    "pain.001": pain001.stream,
    "pain.002": pain002.stream,
    "camt.053": camt.stream,
    "camt.054": camt.stream,
    "mt940": mt940.stream,
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


Converter = Callable[..., Iterator[dict[str, Any]]]


def _converter(head: bytes, source: str, chosen: Format) -> tuple[str, Converter]:
    """(message name, the converter's `stream`) for a file starting with `head`, or FileRefused."""
    message = detect(head, source)
    if chosen.name != "auto" and not message.startswith(chosen.name):
        raise FileRefused(f"the file is a {message}, not a {chosen.name}")
    converter = _STREAMS.get(message[:8])
    if converter is None:
        raise FileRefused(f"{message} messages are not converted (pain.001, pain.002, camt.053, camt.054 are)")
    return message, converter


def stream_file(
    opener: Callable[[], BinaryIO], source: str, chosen: Format, *, tz: tzinfo, limits: Limits,
    index: PaymentIndex | None = None,
) -> tuple[Conversion, Iterator[dict[str, Any]]]:  # fmt: skip
    """Convert one file as a stream: (its conversion, its events). The events are produced while the file is
    read, one record at a time, and kept nowhere. Once they are consumed, the conversion holds the counts,
    rejections and skipped records, and `refused` says whether the whole file was refused: a refusal can
    come at the very end (a control sum), and then every event already produced belongs to a refused file
    and must be taken back (or not published: see watch.py)."""
    result = Conversion(source, chosen.name, limits=limits)

    def events() -> Iterator[dict[str, Any]]:
        try:
            with opener() as handle:
                if chosen.mapping is not None:
                    yield from csvread.stream(handle, result, chosen.mapping)
                    return
                head = handle.read(_HEAD_BYTES)
                handle.seek(0)
                message, converter = _converter(head, source, chosen)
                result.format = message
                yield from converter(handle, result, message, tz=tz, index=index)
        except FileRefused as exc:
            result.refuse(exc)
        except OSError as exc:
            result.refuse(FileRefused(f"cannot read: {exc.strerror or exc}"))

    return result, events()


def convert_bytes(
    data: bytes, source: str, chosen: Format, *, tz: tzinfo, limits: Limits, index: PaymentIndex | None = None
) -> Conversion:
    """Convert one file's bytes, its events kept in `events`; a file that cannot be read at all comes back
    refused (with no events), never raised."""
    return _collect(*stream_file(lambda: io.BytesIO(data), source, chosen, tz=tz, limits=limits, index=index))


def convert_path(
    path: Path, chosen: Format, *, tz: tzinfo, limits: Limits, index: PaymentIndex | None = None
) -> Conversion:
    return _collect(*stream_path(path, chosen, tz=tz, limits=limits, index=index))


def stream_path(
    path: Path, chosen: Format, *, tz: tzinfo, limits: Limits, index: PaymentIndex | None = None
) -> tuple[Conversion, Iterator[dict[str, Any]]]:
    """`stream_file` of a file on disk."""
    return stream_file(lambda: path.open("rb"), str(path), chosen, tz=tz, limits=limits, index=index)


def _collect(result: Conversion, events: Iterator[dict[str, Any]]) -> Conversion:
    result.events = list(events)
    if result.refused is not None:
        result.events.clear()
    return result
