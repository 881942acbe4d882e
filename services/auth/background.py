"""The loops the auth service runs once ready: the mail sender.

`MailSender` delivers the mail outbox (mail.py queues into it): it leases due rows
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, so replicas share the work and never send
one mail twice), hands each to SMTP, and marks it sent; a failure waits a
kit.backoff delay that grows with the mail's attempts, and the mail is tried again
until it goes out, so an SMTP outage delays mail but loses none. It wakes at once
when this replica queued mail (`wake`), else every KLIK_MAIL_POLL_SECONDS."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Protocol

from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from kit.periodic import raise_if_cancel_requested, wait_event
from services.auth import store
from services.auth.settings import MailOptions
from services.auth.store import OutgoingMail

log = logging.getLogger(__name__)

BATCH = 20
# A leased mail is not taken by another replica for this long: longer than one
# SMTP attempt may take (its timeout), so a slow send is never doubled.
LEASE_MARGIN_SECONDS = 30.0
# Sent mail is forgotten after this long.
KEEP_SENT = timedelta(days=7)


class Transport(Protocol):
    async def send(self, mail: OutgoingMail) -> None: ...


class MailSender:
    def __init__(
        self,
        uow: UnitOfWork,
        transport: Transport,
        options: MailOptions,
        clock: Clock = utc_now,
    ) -> None:
        self._uow = uow
        self._transport = transport
        self._options = options
        self._clock = clock
        self._wake = asyncio.Event()
        self._lease = timedelta(seconds=options.smtp.timeout_seconds + LEASE_MARGIN_SECONDS)

    def wake(self) -> None:
        """Mail was queued: look now."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled."""
        while True:
            try:
                busy = await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("mail round failed")
                busy = False
            raise_if_cancel_requested()
            if not busy:
                self._wake.clear()
                await wait_event(self._wake, self._options.poll_seconds)

    async def round(self) -> bool:
        """Send what is due; True when a full batch was taken (more may be due)."""
        now = self._clock()
        async with self._uow.write() as session:
            due = await store.lease_due_mail(session, now, now + self._lease, BATCH)
            if not due:
                await store.prune_sent_mail(session, now - KEEP_SENT)
        for mail in due:
            await self._deliver(mail)
        return len(due) == BATCH

    async def _deliver(self, mail: OutgoingMail) -> None:
        try:
            await self._transport.send(mail)
        except Exception as error:  # every failure is retried: SMTP, network, TLS
            attempts = mail.attempts + 1
            wait = self._options.retry.delay(attempts)
            log.warning(
                "mail not delivered; retrying",
                extra={"mail_id": mail.id, "attempts": attempts, "retry_in": round(wait, 2)},
            )
            async with self._uow.write() as session:
                await store.mail_failed(
                    session,
                    mail.id,
                    attempts,
                    self._clock() + timedelta(seconds=wait),
                    f"{type(error).__name__}: {error}",
                )
            return
        async with self._uow.write() as session:
            await store.mail_sent(session, mail.id, self._clock())
        log.info("mail delivered", extra={"mail_id": mail.id})
