"""Delivery channels: the interface, its error, and a recording channel for dry runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from paysentry.alerts.templates import RenderedEmail, RenderedSms

Rendered = RenderedEmail | RenderedSms


class DeliveryError(Exception):
    """A failed send. `permanent` errors (a rejected recipient, bad credentials) are not retried."""

    def __init__(self, reason: str, *, permanent: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent


class Channel(Protocol):
    name: str

    async def send(self, message: Rendered, recipients: list[str], *, thread_id: str | None = None) -> str:
        """Send one message; return the provider's id for it, or raise DeliveryError."""
        ...

    async def close(self) -> None: ...


@dataclass
class RecordingChannel:
    """Keeps what it would send; for the embedded run (`paysentry demo`) and dry runs."""

    name: str
    sent: list[tuple[Rendered, list[str]]] = field(default_factory=list)
    fail_with: DeliveryError | None = None

    async def send(self, message: Rendered, recipients: list[str], *, thread_id: str | None = None) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.sent.append((message, list(recipients)))
        return f"{self.name}-{len(self.sent)}"

    async def close(self) -> None:
        return None
