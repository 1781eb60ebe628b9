"""A local stand-in for the part of Twilio's REST API that sending an SMS uses.

`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` with HTTP basic auth (account sid + auth token)
and form fields `To`, `From` or `MessagingServiceSid`, `Body`. It answers like Twilio: 201 with the
Message resource as JSON, or an error object `{"code", "message", "more_info", "status"}`.

It runs aiohttp in its own thread, so synchronous and asynchronous tests can both use it. Tests can
make it fail the next N requests (`fail_next(n, status=503)`), take it down (`down()`, connections
refused) and bring it back (`up()`), and read what it accepted (`messages`).
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from devservices.process import free_port

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")


def count_segments(body: str) -> int:
    """How many SMS segments a body takes: GSM-7 (160, or 153 per part) or UCS-2 (70, or 67)."""
    if all(ch in GSM7 or ch in GSM7_EXTENDED for ch in body):
        units = sum(2 if ch in GSM7_EXTENDED else 1 for ch in body)
        single, part = 160, 153
    else:
        units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in body)
        single, part = 70, 67
    if units <= single:
        return 1
    return -(-units // part)


def twilio_error(code: int, message: str, status: int) -> web.Response:
    payload = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(payload, status=status)


@dataclass
class SentSms:
    sid: str
    account_sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    num_segments: int


class TwilioTestServer:
    def __init__(self, account_sid: str, auth_token: str, port: int | None = None):
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.lock = threading.Lock()
        self._messages: list[SentSms] = []
        self.requests = 0
        self.failures_left = 0
        self.failure_status = 503
        self.invalid_numbers: set[str] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="twilio-test-server", daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def messages(self) -> list[SentSms]:
        with self.lock:
            return list(self._messages)

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def up(self) -> TwilioTestServer:
        if self._runner is None:
            self._runner = self._run(self._start())
        return self

    async def _start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, self.host, self.port).start()
        return runner

    def down(self) -> None:
        if self._runner is not None:
            self._run(self._runner.cleanup())
            self._runner = None

    @property
    def is_up(self) -> bool:
        return self._runner is not None

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def fail_next(self, count: int, status: int = 503) -> None:
        with self.lock:
            self.failures_left = count
            self.failure_status = status

    def reset(self) -> None:
        with self.lock:
            self._messages.clear()
            self.requests = 0
            self.failures_left = 0
            self.failure_status = 503
            self.invalid_numbers.clear()
        self.up()

    def _authorised(self, request: web.Request, sid: str) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            login, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return login == self.account_sid == sid and password == self.auth_token

    async def _create_message(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        with self.lock:
            self.requests += 1
            if self.failures_left > 0:
                self.failures_left -= 1
                status = self.failure_status
                fail = True
            else:
                fail = False
        if fail:
            code = {500: 20500, 502: 20502, 503: 20503, 429: 20429}.get(status, 20500)
            return twilio_error(code, "Service is unavailable. Please try again", status)
        if not self._authorised(request, sid):
            return twilio_error(20003, "Authenticate", 401)
        form = await request.post()
        to = str(form.get("To", ""))
        sender = form.get("From")
        service = form.get("MessagingServiceSid")
        body = str(form.get("Body", ""))
        if not to:
            return twilio_error(21604, "A 'To' phone number is required.", 400)
        if not E164.match(to) or to in self.invalid_numbers:
            return twilio_error(21211, f"Invalid 'To' Phone Number: {to}", 400)
        if not sender and not service:
            return twilio_error(21603, "A 'From' phone number is required.", 400)
        if not body:
            return twilio_error(21602, "Message body is required.", 400)
        if len(body) > 1600:
            return twilio_error(21617, "The concatenated message body exceeds the 1600 character limit.", 400)
        message_sid = "SM" + uuid.uuid4().hex
        segments = count_segments(body)
        sent = SentSms(message_sid, sid, to, str(sender) if sender else None, str(service) if service else None,
                       body, segments)  # fmt: skip
        with self.lock:
            self._messages.append(sent)
        now = format_datetime(datetime.now(UTC), usegmt=False)
        uri = f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json"
        resource = {
            "account_sid": sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sent.from_,
            "messaging_service_sid": sent.messaging_service_sid,
            "num_media": "0",
            "num_segments": str(segments),
            "price": None,
            "price_unit": "USD",
            "sid": message_sid,
            "status": "accepted" if service and not sender else "queued",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to,
            "uri": uri,
        }
        return web.json_response(resource, status=201)

    def __enter__(self) -> TwilioTestServer:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.close()
