"""Email with aiosmtplib: plain SMTP, STARTTLS or TLS on connect, optional AUTH; plain-text and HTML
parts. 5xx replies and bad credentials are permanent failures; connection problems and 4xx replies
are retried by the dispatcher."""

from __future__ import annotations

import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from paysentry.alerts.channels import DeliveryError, Rendered
from paysentry.alerts.settings import AlertSettings
from paysentry.alerts.templates import RenderedEmail


class EmailChannel:
    name = "email"

    def __init__(self, settings: AlertSettings):
        self.settings = settings

    def build_message(self, message: RenderedEmail, recipients: list[str], thread_id: str | None) -> EmailMessage:
        domain = self.settings.smtp_from.rpartition("@")[2] or "paysentry.local"
        mail = EmailMessage()
        mail["From"] = self.settings.smtp_from
        mail["To"] = ", ".join(recipients)
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid("paysentry", domain=domain)
        if thread_id:
            # Repeats and escalations of one group thread together in mail clients.
            mail["References"] = f"<{thread_id}@{domain}>"
            mail["X-PaySentry-Group"] = thread_id
        mail["Auto-Submitted"] = "auto-generated"
        mail.set_content(message.text)
        mail.add_alternative(message.html, subtype="html")
        return mail

    def _tls_context(self) -> ssl.SSLContext | None:
        if not (self.settings.smtp_tls or self.settings.smtp_starttls):
            return None
        if not self.settings.smtp_validate_certs:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        cafile = str(self.settings.smtp_ca_file) if self.settings.smtp_ca_file else None
        return ssl.create_default_context(cafile=cafile)

    async def send(self, message: Rendered, recipients: list[str], *, thread_id: str | None = None) -> str:
        if not isinstance(message, RenderedEmail):
            raise DeliveryError("the email channel got a message that is not an email", permanent=True)
        s = self.settings
        mail = self.build_message(message, recipients, thread_id)
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        try:
            await aiosmtplib.send(
                mail,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username if password is not None else None,
                password=password,
                use_tls=s.smtp_tls,
                start_tls=s.smtp_starttls,
                tls_context=self._tls_context(),
                timeout=s.smtp_timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = sorted({r.code for r in exc.recipients})
            raise DeliveryError(f"smtp recipients refused ({codes})", permanent=all(c >= 500 for c in codes)) from None
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"smtp authentication failed ({exc.code})", permanent=True) from None
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(f"smtp {exc.code}: {exc.message}", permanent=exc.code >= 500) from None
        except aiosmtplib.SMTPNotSupported as exc:
            raise DeliveryError(f"smtp: {exc}", permanent=True) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(f"smtp unreachable: {type(exc).__name__}: {exc}") from None
        return str(mail["Message-ID"])

    async def close(self) -> None:
        return None
