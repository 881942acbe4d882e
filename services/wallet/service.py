"""What makes the wallet service: its servicers, its migrations, its consumers and
its background jobs (hold sweeper, idempotency-key pruning)."""

from __future__ import annotations

from pathlib import Path

from kit.server import ServiceSpec
from services.wallet import api, events, jobs
from services.wallet.settings import WalletOptions

MIGRATIONS = Path(__file__).parent / "migrations"


def make_spec(options: WalletOptions | None = None) -> ServiceSpec:
    """The wallet's spec; its options are read from the environment when the
    service becomes ready unless given (tests give them)."""

    def current() -> WalletOptions:
        return options if options is not None else WalletOptions.from_env()

    return ServiceSpec(
        name="wallet",
        register=api.register,
        migrations=MIGRATIONS,
        consumers=lambda resources: events.consumers(resources, current()),
        background=lambda resources: jobs.background(resources, current()),
    )


SPEC = make_spec()
