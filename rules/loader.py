"""Load a rules directory into a compiled Ruleset, collecting every error with its file:line:col.

Directory layout (everything optional except at least one rules file):

    rules/
      *.yaml | *.yml          rule files (`groups:`), any depth, except the names below
      lists.yaml              named lists: {name: [items] | {description, items}}
      lists/<name>.yaml       one named list per file: [items] | {description, items}
      companies.yaml          per-company parameters by company code, plus `default`
      *.tests.yaml, tests/    rule unit tests (not part of the ruleset's version)

Hidden files and editor leftovers (`.x`, `x~`, `#x#`) are ignored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from paysentry.params import CompanyParams
from paysentry.yaml_messages import yaml_type
from rules.analysis import never_true
from rules.compiler import ListValue, Scope, parse_and_compile
from rules.language import NAME, GroupSpec, ListSpec, RulesFileSpec, RuleSpec
from rules.ruleset import CompiledRule, Ruleset
from rules.source import RuleError, RulesLoadError, Source, plain
from rules.template import compile_template, default_template

YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class Layout:
    root: Path
    rules: list[Path] = field(default_factory=list)
    lists: list[Path] = field(default_factory=list)  # lists/<name>.yaml
    lists_file: Path | None = None
    companies: Path | None = None
    tests: list[Path] = field(default_factory=list)

    def versioned(self) -> list[Path]:
        files = [*self.rules, *self.lists]
        files += [p for p in (self.lists_file, self.companies) if p is not None]
        return sorted(files, key=lambda p: self.rel(p))

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return path.name


def _ignored(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return any(p.startswith((".", "#")) or p.endswith("~") or p == "__pycache__" for p in parts)


def discover(path: Path) -> Layout:
    """Sort the YAML files under `path` into rules, lists, companies and tests. A single rules file is
    loaded with the lists and companies beside it."""
    if path.is_file():
        layout = discover(path.parent)
        if path.name.endswith((".tests.yaml", ".tests.yml")):
            layout.tests = [path]
        else:
            layout.rules = [path] if path in layout.rules else []
        return layout
    layout = Layout(path)
    for file in sorted(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file()):
        if _ignored(file, path):
            continue
        rel = file.relative_to(path)
        if file.name.endswith((".tests.yaml", ".tests.yml")) or (len(rel.parts) > 1 and rel.parts[0] == "tests"):
            layout.tests.append(file)
        elif len(rel.parts) == 2 and rel.parts[0] == "lists":
            layout.lists.append(file)
        elif len(rel.parts) == 1 and file.stem == "lists":
            layout.lists_file = file
        elif len(rel.parts) == 1 and file.stem == "companies":
            layout.companies = file
        else:
            layout.rules.append(file)
    return layout


def fingerprint_files(layout: Layout) -> tuple[str, dict[str, str]]:
    """The ruleset version: a hash over the names and bytes of every file that shapes decisions."""
    total = hashlib.sha256()
    files: dict[str, str] = {}
    for path in layout.versioned():
        data = path.read_bytes() if path.exists() else b""
        rel = layout.rel(path)
        files[rel] = hashlib.sha256(data).hexdigest()
        total.update(rel.encode() + b"\0" + files[rel].encode() + b"\n")
    return "sha256:" + total.hexdigest()[:16], files


class Loader:
    def __init__(self, layout: Layout, shown_root: str | None = None):
        self.layout = layout
        self.shown_root = shown_root if shown_root is not None else str(layout.root)
        self.errors: list[RuleError] = []
        self.lists: dict[str, ListValue] = {}
        self.list_origin: dict[str, str] = {}
        self.companies: dict[str, CompanyParams] = {}
        self.rules: list[CompiledRule] = []
        self.rule_origin: dict[str, str] = {}

    def shown(self, path: Path) -> str:
        rel = self.layout.rel(path)
        return f"{self.shown_root.rstrip('/')}/{rel}" if self.shown_root else rel

    def read(self, path: Path) -> Source | None:
        return Source.read(path, self.shown(path), self.errors)

    # -- lists -----------------------------------------------------------------------------------------
    def load_lists(self) -> None:
        if self.layout.lists_file is not None:
            src = self.read(self.layout.lists_file)
            if src is not None and src.tree is not None:
                if not isinstance(src.tree, CommentedMap):
                    self.errors.append(
                        src.error((1, 1), f"lists.yaml must map list names to lists, got {yaml_type(plain(src.tree))}")
                    )
                else:
                    for name in src.tree:
                        self.add_list(src, str(name), (name,))
        for path in self.layout.lists:
            src = self.read(path)
            if src is not None:
                self.add_list(src, path.stem, ())

    def add_list(self, src: Source, name: str, loc: tuple[Any, ...]) -> None:
        if not re.match(NAME, name):
            self.errors.append(
                src.error(src.pos(loc, key=bool(loc)), f"list name {name!r} must be letters, digits, '_' or '-'")
            )
            return
        if name in self.list_origin:
            self.errors.append(
                src.error(
                    src.pos(loc, key=bool(loc)), f"duplicate list '{name}' (first defined in {self.list_origin[name]})"
                )
            )
            return
        raw = src.node(loc) if loc else src.tree
        items_loc: tuple[Any, ...] = loc
        if isinstance(raw, CommentedSeq) or raw is None:
            data: Any = {"items": plain(raw) or []}
        else:
            data, items_loc = raw, (*loc, "items")
        spec = src.validate(ListSpec, data, loc, self.errors, f"list '{name}'")
        if spec is None:
            return
        items = spec.items
        kinds = {"text" if isinstance(i, str) else "number" for i in items}
        if len(kinds) > 1:
            first = "text" if isinstance(items[0], str) else "number"
            odd = next(i for i, item in enumerate(items) if ("text" if isinstance(item, str) else "number") != first)
            self.errors.append(
                src.error(
                    src.pos((*items_loc, odd)), f"list '{name}' mixes {first} and other values: quote them all or none"
                )
            )
            return
        kind = kinds.pop() if kinds else "text"
        values = frozenset(i if isinstance(i, str) else Decimal(str(i)) for i in items)
        self.lists[name] = ListValue(name, kind, values)  # type: ignore[arg-type]
        self.list_origin[name] = f"{src.path}:{src.pos(loc, key=bool(loc))[0]}"

    # -- companies -------------------------------------------------------------------------------------
    def load_companies(self) -> None:
        if self.layout.companies is None:
            return
        src = self.read(self.layout.companies)
        if src is None or src.tree is None:
            return
        if not isinstance(src.tree, CommentedMap):
            self.errors.append(src.error((1, 1), "companies.yaml must map company codes to parameters"))
            return
        default_raw = src.tree.get("default")
        if not isinstance(default_raw, CommentedMap):
            default_raw = {}
        for code, raw in src.tree.items():
            if raw is not None and not isinstance(raw, CommentedMap):
                self.errors.append(
                    src.error(
                        src.pos((code,)),
                        f"company '{code}': expected a mapping of parameters, got {yaml_type(plain(raw))}",
                    )
                )
                continue
            merged = {**plain(default_raw), **plain(raw or {})} if code != "default" else plain(raw or {})
            params = src.validate(CompanyParams, merged, (code,), self.errors, f"company '{code}'")
            if params is not None:
                self.companies[str(code)] = params

    # -- rules -----------------------------------------------------------------------------------------
    def load_rules_file(self, path: Path) -> None:
        src = self.read(path)
        if src is None:
            return
        if src.tree is None:
            self.errors.append(src.error((1, 1), "empty rules file (expected 'groups:')"))
            return
        if not isinstance(src.tree, CommentedMap):
            self.errors.append(
                src.error((1, 1), f"a rules file is a mapping with 'groups:', got {yaml_type(plain(src.tree))}")
            )
            return
        if src.validate(RulesFileSpec, src.tree, (), self.errors, "rules file") is None:
            return
        rel = self.layout.rel(path)
        for g, group_raw in enumerate(src.tree["groups"]):
            group = src.validate(GroupSpec, group_raw, ("groups", g), self.errors, "group")
            if group is None:
                continue
            for r, rule_raw in enumerate(group_raw["rules"]):
                self.load_rule(src, rel, group, ("groups", g, "rules", r), rule_raw)

    def load_rule(self, src: Source, rel: str, group: GroupSpec, loc: tuple[Any, ...], raw: Any) -> None:
        if not isinstance(raw, CommentedMap):
            self.errors.append(src.error(src.pos(loc), f"a rule is a mapping, got {yaml_type(plain(raw))}"))
            return
        rule_id = raw.get("id")
        spec = src.validate(
            RuleSpec, raw, loc, self.errors, f"rule '{rule_id}'" if isinstance(rule_id, str) else "rule"
        )
        if spec is None:
            if isinstance(raw.get("expr"), str):  # still check the condition: report everything at once
                scope = Scope(self.lists, text=str(raw["expr"]))
                parse_and_compile(str(raw["expr"]), scope)
                for offset, message in scope.errors:
                    self.errors.append(src.error(src.offset_pos((*loc, "expr"), offset), message))
            return
        if spec.id in self.rule_origin:
            self.errors.append(
                src.error(
                    src.pos((*loc, "id")),
                    f"duplicate rule id '{spec.id}' (first defined at {self.rule_origin[spec.id]})",
                )
            )
            return
        line, col = src.pos((*loc, "id"))
        self.rule_origin[spec.id] = f"{src.path}:{line}:{col}"

        def located(field_name: str, scope: Scope) -> None:
            for offset, message in scope.errors:
                self.errors.append(src.error(src.offset_pos((*loc, field_name), offset), message))

        scope = Scope(self.lists, text=spec.expr)
        node, condition = parse_and_compile(spec.expr, scope)
        located("expr", scope)
        if node is None or condition is None or scope.errors:
            return
        impossible = never_true(node, spec.expr, {k: v.items for k, v in self.lists.items()})
        if impossible is not None:
            self.errors.append(src.error(src.offset_pos((*loc, "expr"), impossible[0]), impossible[1]))
            return
        if spec.reason is not None:
            tscope = Scope(self.lists, text=spec.reason)
            reason = compile_template(spec.reason, tscope)
            located("reason", tscope)
            scope.used_lists |= tscope.used_lists
        else:
            reason = default_template(spec.description or spec.id, scope)
        annotations = {}
        for key, text in spec.annotations.items():
            ascope = Scope(self.lists, text=text)
            annotations[key] = compile_template(text, ascope)
            for offset, message in ascope.errors:
                self.errors.append(src.error(src.offset_pos((*loc, "annotations", key), offset), message))
        labels = {**group.labels, **spec.labels}
        basis = {
            "rule": plain(raw),
            "group_labels": group.labels,
            "lists": {n: sorted(map(str, self.lists[n].items)) for n in sorted(scope.used_lists)},
        }
        fingerprint = hashlib.sha256(orjson.dumps(basis, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:16]
        self.rules.append(
            CompiledRule(
                id=spec.id,
                group=group.name,
                description=spec.description,
                status=spec.status,
                severity=spec.severity,
                action=spec.action,
                event_types=spec.event_types(),
                expr=spec.expr,
                condition=condition,
                reason=reason,
                labels=labels,
                annotations=annotations,
                file=rel,
                line=line,
                fingerprint=fingerprint,
            )
        )

    def load(self) -> Ruleset | None:
        self.load_lists()
        self.load_companies()
        if not self.layout.rules:
            self.errors.append(RuleError(self.shown_root or ".", 1, 1, "no rules files found"))
        for path in self.layout.rules:
            self.load_rules_file(path)
        if self.errors:
            return None
        version, files = fingerprint_files(self.layout)
        return Ruleset(
            version=version,
            rules=tuple(self.rules),
            companies=dict(self.companies),
            lists=dict(self.lists),
            files=files,
            root=str(self.layout.root),
        )


def check_ruleset(path: str | Path, *, shown_root: str | None = None) -> tuple[Ruleset | None, list[RuleError]]:
    """Load and compile; returns (ruleset or None, every error sorted by file and position)."""
    path = Path(path)
    if not path.exists():
        return None, [RuleError(str(path), 1, 1, "no such file or directory")]
    layout = discover(path)
    root_shown = shown_root if shown_root is not None else str(path if path.is_dir() else path.parent)
    loader = Loader(layout, root_shown)
    ruleset = loader.load()
    return ruleset, sorted(set(loader.errors))


def load_ruleset(path: str | Path) -> Ruleset:
    """Load a rules directory (or one rules file); raises RulesLoadError listing every problem."""
    ruleset, errors = check_ruleset(path)
    if ruleset is None:
        raise RulesLoadError(errors)
    return ruleset


DEFAULT_RULES_DIR = Path(__file__).resolve().parent / "default"
"""The default rulebook shipped with the package."""
