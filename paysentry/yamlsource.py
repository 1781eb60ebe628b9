"""YAML files whose problems are reported as `path:line:col: message`.

Shared by the rules tooling (`rules/source.py`), the alert routes loader
(`paysentry/alerts/routes_yaml.py`) and the settings files read whole into one pydantic model
(`load_model_file`: channel tariffs, validation thresholds). Files are read with ruamel.yaml's
round-trip loader, which remembers where every key, value and list item starts; a syntax error, a
pydantic ValidationError or any later finding is turned into a `SourceError` at the place it is about,
worded by `paysentry.yaml_messages` (one wording for every file).

A file is refused before it is built when it could make a hostile or careless edit expensive: larger
than `MAX_BYTES`, nested deeper than `MAX_DEPTH`, an explicit tag outside the plain YAML types (e.g.
`!!python/object/apply`), or aliases that would expand to more than `MAX_ALIASED_NODES` nodes (a
"billion laughs" file is a few hundred bytes but expands to 10^9 nodes in any walk of the tree).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import BaseConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    Event,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
)
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.resolver import BaseResolver

from paysentry.yaml_messages import Loc, describe_syntax_error, describe_validation_error

MAX_BYTES = 1024 * 1024
"""Largest file read: far above any real rules, lists or routes file."""
MAX_DEPTH = 100
"""Deepest nesting of mappings and lists (a routes tree of 32 levels needs about 70)."""
MAX_ALIASED_NODES = 5000
"""How many nodes all aliases together may stand for: anchors for shared defaults stay well below."""
_CORE_TAG = "tag:yaml.org,2002:"
ALLOWED_TAGS = frozenset(
    {"!", *(_CORE_TAG + name for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp"))}
)
"""Explicit tags a file may carry: the plain types (`!!str 10`); anything else (`!!python/...`, custom
`!tags`) is refused rather than handed to a constructor."""


@dataclass(frozen=True, order=True, slots=True)
class SourceError:
    """One problem in a file. Lines and columns are 1-based."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"


class InvalidSource(Exception):
    """Files that cannot be used: `errors` holds every problem, sorted by `sort_key`; the exception's
    text is one `path:line:col: message` line per problem (or `empty` when there are none)."""

    def __init__(self, errors: Iterable[SourceError], *, empty: str = ""):
        self.errors = sorted(errors, key=self.sort_key)
        super().__init__("\n".join(str(e) for e in self.errors) or empty)

    @staticmethod
    def sort_key(error: SourceError) -> Any:
        """By path, position, then message."""
        return error


def read_source(path: Path, shown: str | None = None) -> str:
    """The UTF-8 text of `path`, reading at most MAX_BYTES (+1 to notice more). A file that is too large,
    cannot be read or is not UTF-8 raises InvalidSource at 1:1, worded as every loader words it."""
    shown = str(path) if shown is None else shown
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
        if len(data) > MAX_BYTES:
            raise InvalidSource([SourceError(shown, 1, 1, f"file is larger than {MAX_BYTES // 1024} KiB")])
        return data.decode("utf-8")
    except OSError as exc:
        raise InvalidSource([SourceError(shown, 1, 1, f"cannot read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise InvalidSource([SourceError(shown, 1, 1, f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None


def _at(path: str, event: Event, message: str) -> InvalidSource:
    mark = event.start_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return InvalidSource([SourceError(path, line, col, message)])


def _show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_CORE_TAG) if tag.startswith(_CORE_TAG) else tag


def _check_scalar(event: ScalarEvent, path: str, resolver: BaseResolver, constructor: BaseConstructor) -> None:
    """A scalar that is not a string (a number, a date, `!!bool x`) is built once on its own, so a value
    the constructor rejects (a 5,000-digit integer, month 13) is refused at its own position."""
    tag = str(event.tag if event.tag is not None else resolver.resolve(ScalarNode, event.value, event.implicit))
    if tag in ("!", _CORE_TAG + "str"):
        return
    node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
    try:
        constructor.construct_object(node, deep=True)
    except Exception as exc:  # the constructor's own errors are ValueError, KeyError, YAMLError, ...
        reason = str(exc).split("\n")[0][:80]
        raise _at(path, event, f"invalid {_show_tag(tag).removeprefix('!!')} value: {reason}") from None


@dataclass(slots=True)
class _OpenNode:
    """A mapping or list whose end event has not come yet."""

    size: int  # nodes so far, itself included, aliases counted as what they stand for
    anchor: str | None
    is_mapping: bool
    key_next: bool = True  # in a mapping: the next node is a key


def check_events(events: Iterable[Event], path: str, yaml: YAML) -> None:
    """Refuse (InvalidSource, positioned) a document too deep, with a foreign tag, with a scalar that
    cannot be built, with a list or mapping as a mapping key, or whose aliases expand beyond
    MAX_ALIASED_NODES. One pass over the parser's events, before any tree is built: the size each
    anchor stands for is counted as its node ends, so nothing is ever expanded."""
    open_nodes: list[_OpenNode] = []
    anchor_sizes: dict[str, int] = {}
    collection_anchors: set[str] = set()
    aliased = 0

    def at_key() -> bool:
        return bool(open_nodes) and open_nodes[-1].is_mapping and open_nodes[-1].key_next

    def finish(size: int, anchor: str | None) -> None:
        if anchor:
            anchor_sizes[anchor] = size
        if open_nodes:
            parent = open_nodes[-1]
            parent.size += size
            parent.key_next = not parent.key_next

    for event in events:
        if isinstance(event, NodeEvent) and not isinstance(event, AliasEvent):
            tag = getattr(event, "tag", None)
            if tag is not None and str(tag) not in ALLOWED_TAGS:
                raise _at(
                    path, event, f"unsupported YAML tag '{_show_tag(str(tag))}' (only plain values, lists and mappings)"
                )
        if isinstance(event, ScalarEvent):
            _check_scalar(event, path, yaml.resolver, yaml.constructor)
            finish(1, event.anchor)
        elif isinstance(event, AliasEvent):
            if at_key() and str(event.anchor) in collection_anchors:
                raise _at(path, event, "a key must be a plain value, not a list or mapping")
            size = anchor_sizes.get(str(event.anchor), 1)
            aliased += size
            if aliased > MAX_ALIASED_NODES:
                raise _at(
                    path, event, f"aliases expand to more than {MAX_ALIASED_NODES} nodes; write the values out instead"
                )
            finish(size, None)
        elif isinstance(event, CollectionStartEvent):
            if at_key():
                raise _at(path, event, "a key must be a plain value, not a list or mapping")
            if len(open_nodes) >= MAX_DEPTH:
                raise _at(path, event, f"nested more than {MAX_DEPTH} levels deep")
            open_nodes.append(_OpenNode(1, event.anchor, isinstance(event, MappingStartEvent)))
        elif isinstance(event, CollectionEndEvent) and open_nodes:
            node = open_nodes.pop()
            if node.anchor:
                collection_anchors.add(node.anchor)
            finish(node.size, node.anchor)


def load_yaml(text: str, path: str) -> Any:
    """The round-trip tree of `text` (duplicate keys are refused). A syntax error raises InvalidSource
    with one error at the problem's position (else its context's, else 1:1); so
    does a file over the limits checked by `check_events` (and one larger than MAX_BYTES, at 1:1)."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise InvalidSource([SourceError(path, 1, 1, f"file is larger than {MAX_BYTES // 1024} KiB")])
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        check_events(yaml.parse(text), path, YAML(typ="rt"))
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise InvalidSource([SourceError(path, line, col, describe_syntax_error(exc))]) from None
    except YAMLError as exc:  # e.g. a control character the reader refuses: it has an offset, not a mark
        offset = getattr(exc, "position", None)
        line, col = (1, 1)
        if isinstance(offset, int) and 0 <= offset <= len(text):
            line = text.count("\n", 0, offset) + 1
            col = offset - (text.rfind("\n", 0, offset) + 1) + 1
        character = getattr(exc, "character", None)
        if character is not None:
            reason = f"character {character if isinstance(character, str) else chr(character)!r} is not allowed"
        else:
            reason = str(exc).splitlines()[0] if str(exc) else "unreadable"
        raise InvalidSource([SourceError(path, line, col, f"invalid YAML: {reason}")]) from None
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:  # a constructor's, not seen by check_events
        raise InvalidSource([SourceError(path, 1, 1, f"invalid YAML value: {str(exc)[:80]}")]) from None


def _start(node: Any) -> tuple[int, int] | None:
    if isinstance(node, CommentedMap | CommentedSeq) and node.lc.line is not None:
        return node.lc.line + 1, node.lc.col + 1
    return None


def position(root: Any, loc: Sequence[Any], *, key: bool = False, containers_at_key: bool = False) -> tuple[int, int]:
    """1-based line and column of the value at `loc` in a round-trip tree. With `key`, of its key; with
    `containers_at_key`, of its key when the value is a mapping or a list (a list item has no key: it
    is always its own position). A path that leaves the document (a missing key, a pydantic union tag)
    gives the start of the deepest mapping or list reached, so a missing key points at the mapping that
    should have had it."""
    best = _start(root) or (1, 1)
    node = root
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, CommentedMap) and part in node:
            child = node[part]
            if last:
                at_key = key or (containers_at_key and isinstance(child, CommentedMap | CommentedSeq))
                line, col = node.lc.key(part) if at_key else node.lc.value(part)
                return line + 1, col + 1
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            if last:
                line, col = node.lc.item(part)
                return line + 1, col + 1
            child = node[part]
        else:
            return best
        node = child
        best = _start(node) or best
    return best


def validation_errors(
    exc: ValidationError,
    root: Any,
    path: str,
    describe: Callable[[ErrorDetails], tuple[Loc, str]],
    *,
    base: Loc = (),
    containers_at_key: bool = False,
) -> list[SourceError]:
    """One SourceError per problem in `exc`, raised while validating the value at `base` in `root`.

    `describe(error)` gives the problem's path below `base` (pydantic's `loc` without the parts that
    are not in the document) and its message. An unknown key points at that key, a missing key at the
    mapping that lacks it, anything else at the value (see `position` for `containers_at_key`)."""
    found = []
    for error in exc.errors(include_url=False):
        loc, message = describe(error)
        full = (*base, *loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            line, col = position(root, full, key=True)
        elif kind == "missing":
            line, col = position(root, full[:-1])
        else:
            line, col = position(root, full, containers_at_key=containers_at_key)
        found.append(SourceError(path, line, col, message))
    return found


ModelT = TypeVar("ModelT", bound=BaseModel)


def load_model_file(path: Path, model: type[ModelT], *, what: str, expected: str, empty_ok: bool = False) -> ModelT:
    """The YAML file at `path` read with the limits above and validated as `model`, or InvalidSource
    with every problem as `file:line:col: message`. `what` names the file in messages ("the tariffs
    file"), `expected` what its top level must be ("a mapping with ..."); an empty file is the model's
    defaults when `empty_ok`, else refused like any other non-mapping."""
    shown = str(path)
    root = load_yaml(read_source(path, shown), shown)
    if root is None and empty_ok:
        return model()
    if not isinstance(root, dict):
        raise InvalidSource([SourceError(shown, 1, 1, f"expected {expected}")])

    def describe(error: ErrorDetails) -> tuple[Loc, str]:
        loc = tuple(part for part in error["loc"] if not (isinstance(part, str) and "[" in part))
        return describe_validation_error(error, what, model, loc=loc, name=".".join(map(str, loc)) or None)

    try:
        return model.model_validate(root)
    except ValidationError as exc:
        raise InvalidSource(validation_errors(exc, root, shown, describe, containers_at_key=True)) from None
