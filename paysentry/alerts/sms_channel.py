"""SMS with the twilio library's REST client on its async HTTP client.

The API base URL is a setting (`PAYSENTRY_TWILIO_API_BASE_URL`). twilio 9 builds every request URL as
`<domain.base_url>/<path>`, where the `api` domain's base_url is `https://api.twilio.com`; this channel
sets `client.api.base_url` to the setting, and clears edge/region (which would rewrite the host), so
the real client talks to whatever server the setting names, e.g. a local one in tests.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from paysentry.alerts.channels import DeliveryError, Rendered
from paysentry.alerts.settings import AlertSettings
from paysentry.alerts.templates import RenderedSms

RETRYABLE_STATUS = {429, 500, 502, 503, 504}


class SmsChannel:
    name = "sms"

    def __init__(self, settings: AlertSettings):
        self.settings = settings
        self._client: Client | None = None
        self._http: AsyncTwilioHttpClient | None = None

    def client(self) -> Client:
        """The twilio client, made on first use inside the running event loop (its HTTP session
        belongs to that loop)."""
        if self._client is None:
            s = self.settings
            if not s.sms_configured:
                raise DeliveryError(
                    "sms is not configured (PAYSENTRY_TWILIO_ACCOUNT_SID, _AUTH_TOKEN, _FROM_NUMBER)", permanent=True
                )
            assert s.twilio_auth_token is not None
            self._http = AsyncTwilioHttpClient(timeout=s.twilio_timeout)
            client = Client(s.twilio_account_sid, s.twilio_auth_token.get_secret_value(), http_client=self._http)
            if s.twilio_api_base_url:
                client.edge = None
                client.region = None
                client.api.base_url = s.twilio_api_base_url.rstrip("/")
            self._client = client
        return self._client

    async def send(self, message: Rendered, recipients: list[str], *, thread_id: str | None = None) -> str:
        if not isinstance(message, RenderedSms):
            raise DeliveryError("the sms channel got a message that is not an SMS", permanent=True)
        client = self.client()
        kwargs: dict[str, Any] = {"body": message.body}
        if self.settings.twilio_messaging_service_sid:
            kwargs["messaging_service_sid"] = self.settings.twilio_messaging_service_sid
        if self.settings.twilio_from_number:
            kwargs["from_"] = self.settings.twilio_from_number
        sids = []
        for number in recipients:
            try:
                created = await client.messages.create_async(to=number, **kwargs)
            except TwilioRestException as exc:
                permanent = exc.status not in RETRYABLE_STATUS
                raise DeliveryError(f"twilio {exc.status} error {exc.code}", permanent=permanent) from None
            except (TwilioException, aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise DeliveryError(f"twilio unreachable: {type(exc).__name__}") from None
            sids.append(str(created.sid))
        return ",".join(sids)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
            self._client = None
