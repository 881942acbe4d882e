"""Handing one mail to the SMTP server of KLIK_SMTP_* with `aiosmtplib` (the
sandbox's mail sink by default)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from services.auth.settings import SmtpSettings
from services.auth.store import OutgoingMail


def message(mail: OutgoingMail, sender: str) -> EmailMessage:
    """A multipart/alternative message: the text body, then the HTML one. The
    Message-ID carries the outbox id, so a receiver can drop a duplicate."""
    built = EmailMessage()
    built["From"] = sender
    built["To"] = mail.to_address
    built["Subject"] = mail.subject
    built["Date"] = formatdate(usegmt=True)
    built["Message-ID"] = make_msgid(idstring=mail.id, domain="klik.localhost")
    built.set_content(mail.text)
    built.add_alternative(mail.html, subtype="html")
    return built


class SmtpTransport:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, mail: OutgoingMail) -> None:
        """Deliver `mail`; raises (aiosmtplib.SMTPException, OSError) when the server
        is unreachable or refuses it."""
        s = self._settings
        await aiosmtplib.send(
            message(mail, s.sender),
            hostname=s.host,
            port=s.port,
            username=s.user or None,
            password=s.password or None,
            use_tls=s.tls == "tls",
            start_tls=s.tls == "starttls",
            timeout=s.timeout_seconds,
        )
