"""One Redis pub/sub listener for the signals workers act on together (rules reload, model switch)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Self

log = logging.getLogger(__name__)


class SignalListener:
    """A background thread that calls `on_signal()` whenever a message arrives on `channel`. A Redis
    hiccup or a failing `on_signal` is logged and the listener goes on: later messages still count."""

    def __init__(self, client: Any, channel: str, on_signal: Callable[[], object], what: str) -> None:
        self._on_signal, self._what = on_signal, what
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"paysentry-{what}", daemon=True)
        self.received = 0

    def start(self) -> Self:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                message = self._pubsub.get_message(timeout=0.5)
            except Exception as exc:
                log.warning("%s listener: %s; retrying", self._what, exc)
                time.sleep(1.0)
                continue
            if message is None:
                continue
            self.received += 1
            log.info("%s requested through Redis", self._what)
            try:
                self._on_signal()
            except Exception:
                log.exception("%s through Redis failed; still listening", self._what)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
