"""Hot reload: a running engine picks up changed rule files without a restart.

`RulesHolder` owns the live ruleset. It notices changes by polling the rules directory (names, sizes
and mtimes of the files that make up the ruleset; cheap enough every second or two), from a background
thread (`start()`) or on explicit `maybe_reload()` calls. The stream also calls `reload_now()` when a
reload message arrives on Redis pub/sub, so every worker switches together.

A changed ruleset that fails `check` is refused: the holder keeps the last good ruleset, logs every
error at ERROR level, and keeps the reasons in `last_errors`. Every load attempt, good or refused, is
appended to the audit log (JSON Lines): when, the ruleset hash, which rules were added, removed or
changed, and which files changed.

The holder also implements RulesetLike by delegating to the current ruleset, but a caller that reads
`version` and calls `evaluate` separately should take one snapshot per event (`holder.current`), so a
swap between the two calls cannot stamp a decision with the wrong version.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from paysentry.audit import AuditLog
from paysentry.contract import RuleHit
from paysentry.params import CompanyParams
from paysentry.ports import RuleContext
from rules.loader import check_ruleset, discover
from rules.ruleset import Ruleset
from rules.source import RuleError, RulesLoadError

log = logging.getLogger("paysentry.rules.reload")

Stamp = tuple[tuple[str, int, int], ...]


def _stamp(root: Path) -> Stamp:
    layout = discover(root)
    out = []
    for path in layout.versioned():
        try:
            stat = path.stat()
        except OSError:
            continue
        out.append((layout.rel(path), stat.st_mtime_ns, stat.st_size))
    return tuple(out)


def diff_rules(old: Ruleset | None, new: Ruleset) -> dict[str, list[str]]:
    before = {r.id: r.fingerprint for r in old.rules} if old else {}
    after = {r.id: r.fingerprint for r in new.rules}
    return {
        "added": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(i for i in set(after) & set(before) if after[i] != before[i]),
    }


def diff_files(old: Ruleset | None, new: Ruleset) -> list[str]:
    before = dict(old.files) if old else {}
    names = set(before) | set(new.files)
    return sorted(n for n in names if before.get(n) != new.files.get(n))


def _check(path: Path) -> tuple[Ruleset | None, list[RuleError]]:
    """`check_ruleset`, where anything it raises is a refusal too: a bug or a limit the checker does not
    know about must not end the watcher or the reload listener, and must be audited like any refusal."""
    try:
        return check_ruleset(path)
    except Exception as exc:
        log.exception("checking the rules in %s failed", path)
        return None, [RuleError(str(path), 1, 1, f"ruleset could not be checked: {type(exc).__name__}: {exc}"[:300])]


class RulesHolder:
    def __init__(
        self,
        path: str | Path,
        *,
        audit_log: str | Path | None = None,
        poll_interval: float = 2.0,
        on_change: Callable[[Ruleset], None] | None = None,
    ):
        self.path = Path(path)
        self.audit_log = Path(audit_log) if audit_log is not None else None
        self.poll_interval = poll_interval
        self.on_change = on_change
        self.last_errors: list[RuleError] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stamp = _stamp(self.path)
        ruleset, errors = _check(self.path)
        if ruleset is None:
            self._audit("refused", None, None, "startup", errors)
            raise RulesLoadError(errors)
        self._current: Ruleset = ruleset
        self._audit("loaded", None, ruleset, "startup")
        log.info("rules %s loaded from %s (%d rules)", ruleset.version, self.path, len(ruleset.rules))

    # -- the live ruleset ------------------------------------------------------------------------------
    @property
    def current(self) -> Ruleset:
        return self._current

    @property
    def version(self) -> str:
        return self._current.version

    def company(self, company_code: str | None) -> CompanyParams:
        return self._current.company(company_code)

    def evaluate(self, ctx: RuleContext) -> tuple[list[RuleHit], list[RuleHit]]:
        return self._current.evaluate(ctx)

    # -- reloading -------------------------------------------------------------------------------------
    def maybe_reload(self) -> bool:
        """Reload if any rules file was added, removed or touched since the last look. True if a new
        ruleset went live."""
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return False
        return self._reload(stamp, "watch")

    def reload_now(self, trigger: str = "signal") -> bool:
        """Reload whatever is on disk now (e.g. on a Redis reload message). True if a new ruleset went
        live; False if nothing changed or the new files were refused."""
        return self._reload(_stamp(self.path), trigger)

    def _reload(self, stamp: Stamp, trigger: str) -> bool:
        with self._lock:
            self._stamp = stamp
            old = self._current
            ruleset, errors = _check(self.path)
            if ruleset is None:
                self.refused += 1
                self.last_errors = errors
                self._audit("refused", old, None, trigger, errors)
                log.error(
                    "REFUSED rules change in %s: %d error(s); still running %s\n%s",
                    self.path,
                    len(errors),
                    old.version,
                    "\n".join(f"  {e}" for e in errors),
                )
                return False
            self.last_errors = []
            if ruleset.version == old.version:
                return False
            self._current = ruleset
            self._audit("loaded", old, ruleset, trigger)
        changes = diff_rules(old, ruleset)
        log.warning(
            "rules reloaded: %s -> %s (added %s, removed %s, changed %s)",
            old.version,
            ruleset.version,
            changes["added"] or "-",
            changes["removed"] or "-",
            changes["changed"] or "-",
        )
        if self.on_change is not None:
            try:
                self.on_change(ruleset)
            except Exception:
                log.exception("rules on_change callback failed")
        return True

    # -- polling thread --------------------------------------------------------------------------------
    def start(self) -> RulesHolder:
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="rules-watch", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.poll_interval):
            try:
                self.maybe_reload()
            except Exception:  # a watcher that dies silently would be worse than a noisy one
                log.exception("rules watcher failed; retrying")

    def __enter__(self) -> RulesHolder:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- audit -----------------------------------------------------------------------------------------
    def _audit(
        self,
        outcome: str,
        old: Ruleset | None,
        new: Ruleset | None,
        trigger: str,
        errors: list[RuleError] | None = None,
    ) -> None:
        if self.audit_log is None:
            return
        record: dict[str, Any] = {
            "outcome": outcome,
            "trigger": trigger,
            "path": str(self.path),
            "version": new.version if new else None,
            "previous_version": old.version if old else None,
        }
        if new is not None:
            record.update(diff_rules(old, new))
            record["files_changed"] = diff_files(old, new)
            record["files"] = dict(new.files)
        if errors:
            record["errors"] = [str(e) for e in errors]
        try:
            AuditLog(self.audit_log).append(record)
        except OSError as exc:  # a full disk must not stop reloads; the log says the record is missing
            log.error("rules audit log %s not written: %s", self.audit_log, exc)
