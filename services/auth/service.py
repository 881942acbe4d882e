"""What makes the auth service: its servicers (built with their use cases once), its
migrations, its consumers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import grpc

from kit.server import Resources, ServiceSpec, token_lifetime
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

    def register(server: grpc.aio.Server, resources: Resources) -> Sequence[str]:
        current = options if options is not None else AuthOptions.from_env()
        return api.register(server, build(resources, current))

    return ServiceSpec(
        name="auth",
        register=register,
        migrations=MIGRATIONS,
        consumers=events.consumers,
    )


SPEC = make_spec()
