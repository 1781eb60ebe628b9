"""`paysentry worker` whose engine raises on one event (id in PAYSENTRY_TEST_FAIL_EVENT), as a bug in a
rule or a feature would: `python -m tests.stream.failing_worker`. The rest is the real worker."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from paysentry.contract import Decision, Event
from paysentry.core import Engine

FAIL_EVENT_ENV = "PAYSENTRY_TEST_FAIL_EVENT"


class FailingEngine(Engine):
    """The real engine, except that it raises on one event."""

    def __init__(self, *args: Any, fail_on: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fail_on = fail_on

    def process(self, event: Event, store: Any, **kwargs: Any) -> Decision | None:
        if event.event_id == self.fail_on:
            raise ZeroDivisionError("float division by zero")
        return super().process(event, store, **kwargs)


def main() -> None:
    from faust.worker import Worker

    from stream.app import create_app, live_rules
    from stream.settings import StreamSettings
    from stream.sinks import ensure_topics

    settings = StreamSettings()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    engine = FailingEngine(live_rules(settings), fail_on=os.environ[FAIL_EVENT_ENV])
    stream_app = create_app(settings, engine=engine)
    loop.run_until_complete(ensure_topics(settings, settings.replication))
    Worker(stream_app.app, loglevel="info", quiet=True, redirect_stdouts=False, loop=loop).execute_from_commandline()


if __name__ == "__main__":
    main()
