"""What makes the auth service: its servicers (built with their use cases once), its
migrations, its consumers."""

from __future__ import annotations

from pathlib import Path

from kit.server import Resources, ServiceParts, ServiceSpec, token_lifetime
from services.auth import api, events
from services.auth.accounts import Accounts, load_common_passwords
from services.auth.admin import Admin
from services.auth.keys import Keyring
from services.auth.passwords import Passwords
from services.auth.sessions import Sessions
from services.auth.settings import AuthOptions
from services.auth.throttle import Throttle

MIGRATIONS = Path(__file__).parent / "migrations"


def build(resources: Resources, options: AuthOptions) -> api.AuthApi:
    """The servicer and the use cases behind it, on `resources.uow`."""
    uow, settings = resources.uow, resources.settings
    keyring = Keyring.of_service(uow, settings, options.signing_key_rotation_seconds)
    sessions = Sessions(uow, keyring, options, settings)
    throttle = Throttle(uow, account=options.account_throttle, address=options.address_throttle)
    accounts = Accounts(
        uow,
        Passwords(options.argon2),
        sessions,
        throttle,
        admin_emails=options.admin_emails,
        common_passwords=load_common_passwords(),
    )
    admin = Admin(uow, resources.callers, token_lifetime(settings))
    return api.AuthApi(resources.callers, accounts, sessions, admin, keyring)


def make_spec(options: AuthOptions | None = None) -> ServiceSpec:
    """The auth service's spec; its options are read from the environment when the
    server is built unless given (tests give them)."""

    def parts(resources: Resources) -> ServiceParts:
        servicer = build(resources, options if options is not None else AuthOptions.from_env())
        return ServiceParts(
            servicers=lambda server: api.register(server, servicer),
            consumers=lambda: events.consumers(resources),
        )

    return ServiceSpec(name="auth", build=parts, migrations=MIGRATIONS)


SPEC = make_spec()
