"""An MT940 file read one statement at a time, so memory does not grow with the file.

A file holds statements one after another, each opened by its `:20:` (transaction reference) line, or
each wrapped in a SWIFT message (`{1:...}{2:...}{4:` ... `-}`) whose block header opens it; a line `-`
or `-}` closes one. Lines are read one by one (each bounded), a statement is held only until it is
complete (bounded: a larger one is skipped to its end and reported, never held), then handed on whole.
Lines outside any statement (headers, trailers `{5:...}`, blank lines) carry no statement tags and are
dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from paysentry.connectors.base import FileRefused, Limits
from paysentry.connectors.xmlsafe import BoundedReader

_TAG_LINE = re.compile(rb"^:(20|25|28C?|60[FM]|61|62[FM]|64|65|86|NS):")


@dataclass
class Statement:
    """One statement's text (None when it was past the size bound), where it starts and its `:61:` lines."""

    first_line: int
    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    oversize: bool = False
    tagged: bool = False  # holds a statement tag (a header or trailer alone is not a statement)
    reference: str | None = None  # its :20:, once read
    transaction_lines: list[int] = field(default_factory=list)

    def text(self) -> str:
        data = b"".join(self.lines)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data.decode("latin-1")  # the SWIFT character set and the German banks' ISO 8859-1


def statements(source: BinaryIO, limits: Limits) -> Iterator[Statement]:
    """The file's statements in order (FileRefused for a binary file or one past the file's limits)."""
    max_bytes = limits.max_statement_bytes
    reader = BoundedReader(source, limits.max_file_bytes)
    current: Statement | None = None
    number = 0
    pending = b""
    while True:
        block = reader.read(64 * 1024)
        if not block:
            break
        pending += block
        lines = pending.split(b"\n")
        pending = lines.pop()
        if len(pending) > limits.max_line_bytes:
            raise FileRefused(f"a line longer than the {limits.max_line_bytes} bytes allowed", f"line {number + 1}")
        for line in lines:
            number += 1
            if len(line) > limits.max_line_bytes:
                raise FileRefused(f"a line longer than the {limits.max_line_bytes} bytes allowed", f"line {number}")
            current, done = _take(current, line + b"\n", number, max_bytes)
            if done is not None:
                yield done
    if pending:
        current, done = _take(current, pending, number + 1, max_bytes)
        if done is not None:
            yield done
    if current is not None and current.tagged:
        yield current


Taken = tuple[Statement | None, Statement | None]


def _take(current: Statement | None, line: bytes, number: int, max_bytes: int) -> Taken:
    """(the statement being read, a statement completed by this line or None)."""
    if b"\x00" in line:
        raise FileRefused("binary data (NUL bytes) in a text statement", f"line {number}")
    bare = line.strip()
    # A SWIFT block header opens a statement; so does a :20: once the current one has its own.
    second_reference = bare.startswith(b":20:") and current is not None and current.reference is not None
    opens = bare.startswith(b"{1:") or second_reference
    done = None
    if opens and current is not None:
        done, current = (current if current.tagged else None), None
    if current is None:
        if not bare or bare in (b"-", b"-}") or bare.startswith(b"{5:"):
            return None, done
        current = Statement(first_line=number)
    tag = _TAG_LINE.match(bare)
    if tag is not None:
        current.tagged = True
        if tag.group(1) == b"20" and current.reference is None:
            current.reference = bare[4:20].decode("latin-1").strip()
        if tag.group(1) == b"61":
            current.transaction_lines.append(number)
    current.size += len(line)
    closes = bare in (b"-", b"-}") or bare.endswith(b"-}")
    if current.size > max_bytes:
        current.oversize, current.lines = True, []
    elif not current.oversize and not closes and not bare.startswith(b"{"):  # the package reads tags only
        current.lines.append(line)
    if closes:
        finished = current if current.tagged else None
        return None, done or finished
    return current, done
