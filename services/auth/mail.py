"""The mail auth sends: its templates (a plain-text and an HTML body each, links at
KLIK_PUBLIC_URL) and `queue`, which records a mail in the outbox table inside the
caller's transaction, so the mail goes out if and only if the change that needs it
commits. background.MailSender delivers it over SMTP (smtp.py)."""

from __future__ import annotations

import html
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from string import Template
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from services.auth import store
from services.auth.domain import Account
from services.auth.sessions import digest


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class MailTemplate:
    subject: Template
    text: Template
    html: Template

    def render(self, to: str, **values: str) -> Mail:
        """The mail to `to`; values are escaped in the HTML body."""
        escaped = {key: html.escape(value, quote=True) for key, value in values.items()}
        return Mail(
            to=to,
            subject=self.subject.substitute(values),
            text=self.text.substitute(values),
            html=_LAYOUT.substitute(body=self.html.substitute(escaped)),
        )


_LAYOUT = Template(
    '<!doctype html>\n<html><body style="font-family: sans-serif; line-height: 1.5">\n'
    '$body\n<p style="color: #777">— klik</p>\n</body></html>\n'
)

VERIFY_EMAIL = MailTemplate(
    subject=Template("Confirm your email address for klik"),
    text=Template(
        "Hello $name,\n\n"
        "please confirm that $email is your address by opening this link:\n\n"
        "$link\n\n"
        "The link works for $hours hours, once. If you did not sign up for klik, ignore\n"
        "this mail: nothing happens without the link.\n\n— klik\n"
    ),
    html=Template(
        "<p>Hello $name,</p>\n"
        "<p>please confirm that <b>$email</b> is your address:</p>\n"
        '<p><a href="$link">Confirm my email address</a></p>\n'
        "<p>The link works for $hours hours, once. If you did not sign up for klik, "
        "ignore this mail: nothing happens without the link.</p>"
    ),
)


RESET_PASSWORD = MailTemplate(
    subject=Template("Reset your klik password"),
    text=Template(
        "Hello $name,\n\n"
        "someone (we hope you) asked to reset the password of the klik account of\n"
        "$email. To choose a new one, open this link:\n\n"
        "$link\n\n"
        "The link works for $minutes minutes, once. If you did not ask, ignore this\n"
        "mail: your password stays as it is.\n\n— klik\n"
    ),
    html=Template(
        "<p>Hello $name,</p>\n"
        "<p>someone (we hope you) asked to reset the password of the klik account of "
        "<b>$email</b>.</p>\n"
        '<p><a href="$link">Choose a new password</a></p>\n'
        "<p>The link works for $minutes minutes, once. If you did not ask, ignore this "
        "mail: your password stays as it is.</p>"
    ),
)

PASSWORD_CHANGED = MailTemplate(
    subject=Template("Your klik password was changed"),
    text=Template(
        "Hello $name,\n\n"
        "the password of the klik account of $email was just reset, and every device\n"
        "signed in to it was signed out. If that was not you, reset it again at once\n"
        "and tell us.\n\n— klik\n"
    ),
    html=Template(
        "<p>Hello $name,</p>\n"
        "<p>the password of the klik account of <b>$email</b> was just reset, and every "
        "device signed in to it was signed out.</p>\n"
        "<p>If that was not you, reset it again at once and tell us.</p>"
    ),
)


CONFIRM_NEW_EMAIL = MailTemplate(
    subject=Template("Confirm your new email address for klik"),
    text=Template(
        "Hello $name,\n\n"
        "you asked to use $email for your klik account. To confirm, open this link:\n\n"
        "$link\n\n"
        "The link works for $hours hours, once. If you did not ask, ignore this mail:\n"
        "nothing changes without the link.\n\n— klik\n"
    ),
    html=Template(
        "<p>Hello $name,</p>\n"
        "<p>you asked to use <b>$email</b> for your klik account:</p>\n"
        '<p><a href="$link">Confirm my new email address</a></p>\n'
        "<p>The link works for $hours hours, once. If you did not ask, ignore this mail: "
        "nothing changes without the link.</p>"
    ),
)

EMAIL_CHANGE_REQUESTED = MailTemplate(
    subject=Template("Your klik email address is being changed"),
    text=Template(
        "Hello $name,\n\n"
        "someone signed in to the klik account of $email asked to move it to\n"
        "$new_email. It moves once that address confirms. If that was not you,\n"
        "change your password at once: the request needed it.\n\n— klik\n"
    ),
    html=Template(
        "<p>Hello $name,</p>\n"
        "<p>someone signed in to the klik account of <b>$email</b> asked to move it to "
        "<b>$new_email</b>. It moves once that address confirms.</p>\n"
        "<p>If that was not you, change your password at once: the request needed it.</p>"
    ),
)


async def link_token(
    session: AsyncSession,
    purpose: str,
    account: Account,
    ttl_seconds: float,
    now: datetime,
    *,
    to: str = "",
) -> str:
    """In the caller's transaction: a new single-use token for a mailed link (32
    random bytes; only its SHA-256 digest is stored), valid `ttl_seconds` for the
    account's current address (or `to`, an address it is moving to). The account's
    expired tokens are forgotten."""
    token = secrets.token_urlsafe(32)
    await store.prune_email_tokens(session, account.id, now)
    await store.add_email_token(
        session,
        digest(token),
        purpose,
        account.id,
        to or account.email,
        now,
        now + timedelta(seconds=ttl_seconds),
    )
    return token


def link(public_url: str, path: str, **query: str) -> str:
    """`public_url` + `path` with `query`: where a mailed link points."""
    return f"{public_url}{path}?{urlencode(query)}"


async def queue(session: AsyncSession, mail: Mail, now: datetime) -> str:
    """Record `mail` for delivery in the caller's transaction; its id (the
    Message-ID's left part, so a receiver can spot a duplicate)."""
    mail_id = str(uuid.uuid4())
    await store.add_mail(session, mail_id, mail.to, mail.subject, mail.text, mail.html, now)
    return mail_id
