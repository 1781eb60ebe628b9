"""A real SMTP server (aiosmtpd) on loopback, in its own thread, that keeps every message it accepts.

Plain, STARTTLS (optionally required) or implicit TLS; optional AUTH with one login. Tests can take it
down and bring it back on the same port (`down()` / `up()`), or make it answer the next N messages
with a temporary failure (`fail_next(n)`).
"""

from __future__ import annotations

import email
import email.policy
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from devservices.process import free_port


def make_self_signed_cert(directory: Path, common_name: str = "localhost") -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 / localhost, made with the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", f"/CN={common_name}",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes
    authenticated_as: str | None = None
    tls: bool = False

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, content_type: str) -> str:
        for part in self.message.walk():
            if part.get_content_type() == content_type:
                return str(part.get_content())
        raise KeyError(content_type)


@dataclass
class _Handler:
    server: SmtpTestServer
    received: list[ReceivedMail] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.server.lock:
            if self.server.failures_left > 0:
                self.server.failures_left -= 1
                self.server.rejected += 1
                return self.server.failure_reply
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            message=message,
            raw=raw,
            authenticated_as=login,
            tls=session.ssl is not None
            or (server.transport is not None and server.transport.get_extra_info("ssl_object") is not None),
        )
        with self.server.lock:
            self.received.append(mail)
        return "250 2.0.0 OK queued"


class SmtpTestServer:
    def __init__(
        self,
        *,
        port: int | None = None,
        cert: tuple[Path, Path] | None = None,
        mode: str = "plain",
        username: str | None = None,
        password: str | None = None,
    ):
        """mode: "plain", "starttls" (offered and required) or "tls" (implicit TLS on connect)."""
        if mode not in ("plain", "starttls", "tls"):
            raise ValueError(mode)
        if mode != "plain" and cert is None:
            raise ValueError(f"mode {mode!r} needs a certificate")
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.mode = mode
        self.cert = cert
        self.username = username
        self.password = password
        self.lock = threading.Lock()
        self.failures_left = 0
        self.failure_reply = "451 4.3.0 Temporary failure, try again later"
        self.rejected = 0
        self._handler = _Handler(self)
        self._controller: Controller | None = None

    @property
    def messages(self) -> list[ReceivedMail]:
        with self.lock:
            return list(self._handler.received)

    def _tls_context(self) -> ssl.SSLContext:
        assert self.cert is not None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.cert[0]), str(self.cert[1]))
        return context

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def up(self) -> SmtpTestServer:
        if self._controller is not None:
            return self
        kwargs: dict[str, Any] = {"hostname": self.host, "port": self.port, "ready_timeout": 5.0}
        if self.mode == "starttls":
            kwargs.update(tls_context=self._tls_context(), require_starttls=True)
        elif self.mode == "tls":
            kwargs.update(ssl_context=self._tls_context(), server_hostname="localhost")
        if self.username is not None:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
            if self.mode == "plain":
                kwargs.update(auth_require_tls=False)
        controller = Controller(self._handler, **kwargs)
        controller.start()
        self._controller = controller
        return self

    def down(self) -> None:
        """Stop listening: connections are refused until `up()`."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def is_up(self) -> bool:
        return self._controller is not None

    def fail_next(self, count: int, reply: str | None = None) -> None:
        with self.lock:
            self.failures_left = count
            if reply is not None:
                self.failure_reply = reply

    def reset(self) -> None:
        with self.lock:
            self._handler.received.clear()
            self.failures_left = 0
            self.rejected = 0
            self.failure_reply = "451 4.3.0 Temporary failure, try again later"
        self.up()

    def __enter__(self) -> SmtpTestServer:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()
