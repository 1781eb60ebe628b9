"""Reading ISO 20022 XML from outside safely, and checking it against the official schemas.

Bank and ERP files are streamed (`walk`, lxml `iterparse`) with lxml configured for hostile input: no DTD is
loaded, no entity is resolved, nothing is fetched from the network, libxml2's own size limits stay on (no
`huge_tree`), and a document type declaration is refused outright (ISO 20022 messages never carry one; XXE
and "billion laughs" both need one). The file size, the nesting depth and the number of elements are bounded
while streaming, so a hostile file is refused before it costs anything, and a file of any size is read at
the memory of one record: each record is removed from the tree once converted.

Schema errors are reported with their line and mapped to the record (transaction) they fall in, so one
bad transaction is rejected and the others still convert: while streaming, each transaction is validated
with its group header and payment-information header (pain001.py). The pain.001 schemas are the ones
shipped with the `sepaxml` package (001.001.03, .09, .10, .11); a message version without a shipped schema is checked
structurally by its converter.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any, BinaryIO

from lxml import etree

from paysentry.connectors.base import FileRefused, Limits

ISO_NAMESPACE = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:((?:pain|camt)\.\d{3}\.\d{3}\.\d{2})")
_NS_IN_TEXT = re.compile(r"\{urn:iso:std:iso:20022:tech:xsd:[^}]*\}")
# A DTD in any of the encodings a document may declare itself in.
_DOCTYPE_MARKS = tuple(
    mark.encode(codec) for mark in ("<!DOCTYPE", "<!ENTITY") for codec in ("utf-8", "utf-16-le", "utf-16-be")
)
SCHEMA_ERRORS_KEPT = 200
_HEAD_SCAN = 64 * 1024  # a DTD comes before the root element: at the head of a file


def message_name(head: bytes) -> str | None:
    """'pain.001.001.03' from the namespace near the top of a file, or None."""
    found = ISO_NAMESPACE.search(head)
    return found.group(1).decode() if found else None


@cache
def shipped_schema(message: str) -> etree.XMLSchema | None:
    """The official XSD of `message` as shipped by sepaxml, or None when it ships none."""
    path = resources.files("sepaxml") / "schemas" / f"{message}.xsd"
    if not path.is_file():
        return None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(io.BytesIO(path.read_bytes()), parser))


class BoundedReader:
    """A binary file read through a byte budget: the file is refused as soon as it runs past the limit."""

    def __init__(self, raw: BinaryIO, limit: int) -> None:
        self.raw = raw
        self.limit = limit
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.raw.read(size if size is not None and size >= 0 else self.limit + 1 - self.count)
        self.count += len(chunk)
        if self.count > self.limit:
            raise FileRefused(f"file is larger than allowed: more than the {self.limit} allowed bytes")
        return chunk


def refuse_doctype(head: bytes) -> None:
    """Refuse a file whose head declares a DTD in any encoding (the parser's own view is checked too)."""
    if any(mark in head for mark in _DOCTYPE_MARKS):
        raise FileRefused("a document type declaration (DOCTYPE/ENTITY) is not allowed in a payment message")


Walked = tuple[str, Any]  # ("record" | "block" | "end", element)


def walk(stream: BinaryIO, limits: Limits, wrong: str, root: str, records: str, blocks: str) -> Iterator[Walked]:
    """Stream a message: ("record", element) at the end of each `records` element, ("block", element) at the
    end of each `blocks` element, ("end", document) last. A record or block is removed from the tree once
    the consumer is done with it, so the tree holds only the current record with its ancestors and their
    headers (the elements before the first record). Limits hold while streaming: size, depth, elements,
    and elements held at once (a record or a header). `wrong` prefixes the refusal of another message."""
    refuse_doctype(stream.read(_HEAD_SCAN))
    stream.seek(0)
    events = etree.iterparse(
        BoundedReader(stream, limits.max_file_bytes), events=("start", "end"), resolve_entities=False,
        load_dtd=False, no_network=True, huge_tree=False, remove_comments=True, remove_pis=True,
    )  # fmt: skip
    depth = elements = held = 0
    try:
        for kind, element in events:
            if kind == "start":
                depth, elements, held = depth + 1, elements + 1, held + 1
                if depth > limits.max_xml_depth:
                    raise FileRefused(
                        f"nested more than {limits.max_xml_depth} levels deep", f"line {element.sourceline}"
                    )
                if elements > limits.max_xml_elements:
                    raise FileRefused(f"more than {limits.max_xml_elements} elements", f"line {element.sourceline}")
                if held > limits.max_record_elements:
                    where = f"line {element.sourceline}"
                    raise FileRefused(f"more than {limits.max_record_elements} elements in one record", where)
                if depth <= 2:
                    _check_top(element, depth, wrong, root)
                continue
            depth -= 1
            name = local(element)
            if name in (records, blocks):
                yield ("record" if name == records else "block"), element
                held = 0
                parent = element.getparent()
                element.clear()
                if parent is not None:
                    parent.remove(element)
            elif depth == 0:
                if child(element, root) is None:
                    raise FileRefused(f"{wrong}: no Document/{root}")
                yield "end", element
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno else 1
        problem = local_names(exc.msg)
        raise FileRefused(f"not well-formed XML (truncated or damaged): {problem}", f"line {line}") from None


def _check_top(element: Any, depth: int, wrong: str, root: str) -> None:
    if depth == 1:
        info = element.getroottree().docinfo
        if info.doctype or info.internalDTD is not None:
            raise FileRefused("a document type declaration is not allowed in a payment message")
        if local(element) != "Document":
            raise FileRefused(f"{wrong}: no Document/{root}")
    elif local(element) != root:
        raise FileRefused(f"{wrong}: no Document/{root}", f"line {element.sourceline}")


def local_names(text: str) -> str:
    """An lxml message with the ISO namespace left out of element names, for reading."""
    return _NS_IN_TEXT.sub("", text)


def schema_errors(tree: etree._ElementTree, schema: etree.XMLSchema) -> list[tuple[Any, int, str]]:
    """(element or None, line, message) for each schema error; a file with more than SCHEMA_ERRORS_KEPT
    of them is refused (every error must reject its record, and past that many the file is not usable)."""
    if schema.validate(tree):
        return []
    entries = list(schema.error_log)
    if len(entries) > SCHEMA_ERRORS_KEPT:
        first = entries[0]
        raise FileRefused(
            f"more than {SCHEMA_ERRORS_KEPT} schema errors; the first: {local_names(first.message)}",
            f"line {first.line}",
        )
    found = []
    for entry in entries:
        element = None
        if entry.path:
            try:
                hits = tree.xpath(entry.path)
                element = hits[0] if isinstance(hits, list) and hits else None
            except etree.XPathError:
                element = None
        found.append((element, entry.line, local_names(entry.message)))
    return found


def local(element: Any) -> str:
    tag = element.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def child(element: Any, *path: str) -> Any:
    """The first element at `path` of local names below `element`, or None."""
    node = element
    for name in path:
        if node is None:
            return None
        node = next((c for c in node if isinstance(c.tag, str) and local(c) == name), None)
    return node


def children(element: Any, name: str) -> Iterator[Any]:
    if element is None:
        return
    for node in element:
        if isinstance(node.tag, str) and local(node) == name:
            yield node


def text(element: Any, *path: str) -> str | None:
    """The stripped text at `path`, or None when absent or empty."""
    node = child(element, *path) if path else element
    if node is None or node.text is None:
        return None
    value = node.text.strip()
    return value or None


def enclosing(element: Any, name: str) -> Any:
    """The nearest ancestor-or-self of `element` with local name `name`, or None."""
    node = element
    while node is not None:
        if local(node) == name:
            return node
        node = node.getparent()
    return None
