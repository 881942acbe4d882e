"""What makes the wallet service: its servicers, its migrations, its consumers and
its background loops (hold sweeper, idempotency-key pruning), all over one `Ledger`
per replica."""

from __future__ import annotations

from pathlib import Path

import grpc

from kit.server import Resources, ServiceSpec
from services.wallet import api, background, events
from services.wallet.ledger import Ledger
from services.wallet.payments import Payments
from services.wallet.settings import WalletOptions
from services.wallet.stripe_client import StripeClient

MIGRATIONS = Path(__file__).parent / "migrations"


def make_spec(options: WalletOptions | None = None) -> ServiceSpec:
    """The wallet's spec; its options are read from the environment when the
    service becomes ready unless given (tests give them)."""

    def current() -> WalletOptions:
        return options if options is not None else WalletOptions.from_env()

    # The servicers and the background loops share the replica's ledger. The spec
    # has no single build step (kit.server.ServiceSpec), so the ledger is found
    # again by the Resources it was built over, until that replica closes.
    ledgers: dict[int, Ledger] = {}

    def ledger(resources: Resources) -> Ledger:
        key = id(resources)
        if key not in ledgers:
            ledgers[key] = Ledger(resources.uow)

            async def forget() -> None:
                ledgers.pop(key, None)

            resources.on_close(forget)
        return ledgers[key]

    def register(server: grpc.aio.Server, resources: Resources) -> tuple[str, ...]:
        options = current()
        payments = Payments(resources.uow, StripeClient(options), options)
        return tuple(api.register(server, resources, ledger(resources), payments))

    return ServiceSpec(
        name="wallet",
        register=register,
        migrations=MIGRATIONS,
        consumers=lambda resources: events.consumers(resources, current()),
        background=lambda resources: background.loops(ledger(resources), current()),
    )


SPEC = make_spec()
