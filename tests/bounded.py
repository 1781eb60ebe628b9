"""Running code that used to hang, so that a hang fails the test instead of stalling the suite."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

GENEROUS = 60.0  # seconds; only guards the test run against a hang, never measures speed


def finishes(action: Callable[[], Any], timeout: float = GENEROUS) -> Any:
    """The result of `action()`, run in a thread; fails if it has not returned within `timeout`."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = action()
        except BaseException as exc:  # re-raised below, in the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), f"did not finish within {timeout:.0f}s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
