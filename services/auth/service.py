"""What makes the auth service: its servicers (built with their use cases once), its
migrations, its consumers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kit.server import Resources, ServiceParts, ServiceSpec, token_lifetime
from services.auth import api, events
from services.auth.accounts import Accounts, load_common_passwords
from services.auth.admin import Admin
from services.auth.background import MailSender
from services.auth.content_client import Avatars
from services.auth.email_change import EmailChange
from services.auth.keys import Keyring
from services.auth.oidc import SocialSignIn
from services.auth.passwords import Passwords
from services.auth.profiles import Profiles
from services.auth.recovery import Recovery
from services.auth.sessions import Sessions
from services.auth.settings import AuthOptions
from services.auth.smtp import SmtpTransport
from services.auth.throttle import Throttle
from services.auth.two_factor import TwoFactor
from services.auth.verification import Verification

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass
class Built:
    api: api.AuthApi
    mail_sender: MailSender
    keyring: Keyring
    two_factor: TwoFactor

    async def seal_at_rest(self) -> None:
        """At every start-up, before serving: seal plaintext signing keys, re-seal
        secrets under an older KEK with the current one, and fail (kek.KekError) when
        a stored secret does not open with the configured KEK."""
        await self.keyring.seal_at_rest()
        await self.two_factor.seal_at_rest()


def build(resources: Resources, options: AuthOptions) -> Built:
    """The servicer, the use cases behind it (on `resources.uow`) and the mail
    sender their mail goes out by."""
    uow, settings = resources.uow, resources.settings
    mail_sender = MailSender(uow, SmtpTransport(options.mail.smtp), options.mail)
    verification = Verification(uow, options, mail_sender.wake)
    keyring = Keyring.of_service(
        uow, options.sealer, settings, options.signing_key_rotation_seconds
    )
    sessions = Sessions(uow, keyring, options, settings, resources.callers)
    throttle = Throttle(uow, account=options.account_throttle, address=options.address_throttle)
    passwords = Passwords(options.argon2)
    common_passwords = load_common_passwords()
    recovery = Recovery(
        uow,
        passwords,
        throttle,
        options,
        common_passwords=common_passwords,
        mail_queued=mail_sender.wake,
    )
    admin = Admin(uow, resources.callers, token_lifetime(settings))
    two_factor = TwoFactor(uow, options.sealer, throttle, sessions, options)
    accounts = Accounts(
        uow,
        passwords,
        sessions,
        throttle,
        verification,
        admin,
        admin_emails=options.admin_emails,
        common_passwords=common_passwords,
        two_factor=two_factor,
    )
    servicer = api.AuthApi(
        resources.callers,
        accounts,
        sessions,
        admin,
        keyring,
        verification,
        recovery,
        Profiles(uow, Avatars(lambda: resources.channel("content"))),
        options.trusted_callers,
        two_factor=two_factor,
        email_change=EmailChange(uow, accounts, options, mail_sender.wake),
        social=SocialSignIn(
            uow,
            options.oidc,
            public_url=options.mail.public_url,
            admin_emails=options.admin_emails,
            sessions=sessions,
            passwords=passwords,
            throttle=throttle,
            verification=verification,
            two_factor=two_factor,
        ),
    )
    return Built(servicer, mail_sender, keyring, two_factor)


def make_spec(options: AuthOptions | None = None) -> ServiceSpec:
    """The auth service's spec; its options are read from the environment when the
    server is built unless given (tests give them)."""

    def parts(resources: Resources) -> ServiceParts:
        current = options if options is not None else AuthOptions.from_env()
        built = build(resources, current)
        return ServiceParts(
            servicers=lambda server: api.register(server, built.api),
            consumers=lambda: events.consumers(resources, current.consumer_prefix),
            background=lambda: [built.mail_sender.run()],
            prepare=built.seal_at_rest,
        )

    return ServiceSpec(name="auth", build=parts, migrations=MIGRATIONS)


SPEC = make_spec()
