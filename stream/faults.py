"""Fault injection points of the decision stage, for the crash tests.

The stage asks its `FaultHook` at each named point of a checkpoint whether a fault is armed there; when it
is, the stage first makes the partial state the point stands for durable, then calls `crash`. Production
runs with `NO_FAULTS`, armed nowhere. Points (`checkpoint`: the number of the checkpoint in progress,
counted from 1 since the worker took the partition):

- `emitted`: outputs flushed to the broker, the state that goes with them not checkpointed;
- `state`: checkpoint header written, half of its entities written;
- `redo`: checkpoint header written, none of its entities.
"""

from __future__ import annotations

from typing import Literal, Protocol

FaultPoint = Literal["emitted", "state", "redo"]


class FaultHook(Protocol):
    def armed(self, point: FaultPoint, checkpoint: int) -> bool:
        """Whether to stop at `point` of the `checkpoint`-th checkpoint."""
        ...

    def crash(self, point: FaultPoint) -> None:
        """Stop there (called only where `armed` said so)."""
        ...


class NoFaults:
    def armed(self, point: FaultPoint, checkpoint: int) -> bool:
        return False

    def crash(self, point: FaultPoint) -> None:
        pass


NO_FAULTS: FaultHook = NoFaults()
