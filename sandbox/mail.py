"""A mail sink standing in for an SMTP relay: an `aiosmtpd` server that accepts every
message (no authentication, no TLS: it only listens on the machine) and keeps it, and
the HTTP route that lists what arrived, so a newcomer and the tests can read the
verification and reset links klik mails.

    GET /_sandbox/mail?to=<address>     {"messages": [{to, from, subject, text, html,
                                         received_at}]}, oldest first; without `to`,
                                         every message
    DELETE /_sandbox/mail               forget them

`python -m sandbox` starts the SMTP server on KLIK_SANDBOX_SMTP_PORT (8025) beside the
HTTP one; both share `MAILBOX`."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# The port the embedded stack runs the sink on; auth's default KLIK_SMTP_PORT.
DEFAULT_SMTP_PORT = 8025


@dataclass
class Mailbox:
    """Every message received, oldest first (the SMTP thread appends, HTTP reads)."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.messages.append(message)

    def to(self, address: str | None) -> list[dict[str, Any]]:
        wanted = address.strip().lower() if address else None
        with self._lock:
            return [m for m in self.messages if wanted is None or wanted in m["recipients"]]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()


MAILBOX = Mailbox()


def parse(envelope_to: list[str], raw: bytes) -> dict[str, Any]:
    """One received message as the listing shows it."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    return {
        "to": str(message.get("To", ", ".join(envelope_to))),
        "from": str(message.get("From", "")),
        "subject": str(message.get("Subject", "")),
        "text": text.get_content() if text is not None else "",
        "html": html.get_content() if html is not None else "",
        "message_id": str(message.get("Message-ID", "")),
        "received_at": time.time(),
        "recipients": [address.lower() for address in envelope_to],
    }


class Handler:
    """aiosmtpd's handler: keep each message in `mailbox`."""

    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.mailbox.add(parse(list(envelope.rcpt_tos), raw))
        return "250 Message accepted for delivery"


class SmtpSink:
    """The SMTP side, in a thread of its own (it outlives no process)."""

    def __init__(
        self, mailbox: Mailbox = MAILBOX, host: str = "127.0.0.1", port: int = DEFAULT_SMTP_PORT
    ) -> None:
        self.mailbox = mailbox
        self.host = host
        self.port = port
        self._controller: Controller | None = None

    def start(self) -> SmtpSink:
        self._controller = Controller(Handler(self.mailbox), hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def mailbox_of(request: Request) -> Mailbox:
    """The app's mailbox (`app.state.mailbox` when a test set one), else `MAILBOX`."""
    box = getattr(request.app.state, "mailbox", None)
    return box if isinstance(box, Mailbox) else MAILBOX


async def mail(request: Request) -> Response:
    box = mailbox_of(request)
    if request.method == "DELETE":
        box.clear()
        return Response(status_code=204)
    listed = box.to(request.query_params.get("to"))
    return JSONResponse(
        {"messages": [{k: v for k, v in m.items() if k != "recipients"} for m in listed]}
    )


ROUTES = [Route("/_sandbox/mail", mail, methods=["GET", "DELETE"])]
