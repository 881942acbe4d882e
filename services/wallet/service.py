"""What makes the wallet service: its servicers, its migrations, its consumers and
its background loops (hold sweeper, idempotency-key pruning), all over one `Ledger`
per replica."""

from __future__ import annotations

from pathlib import Path

from kit.server import Resources, ServiceParts, ServiceSpec
from services.wallet import api, background, events
from services.wallet.ledger import Ledger
from services.wallet.payments import Payments
from services.wallet.plans import Plans
from services.wallet.settings import WalletOptions
from services.wallet.stripe_client import StripeClient

MIGRATIONS = Path(__file__).parent / "migrations"


def make_spec(options: WalletOptions | None = None) -> ServiceSpec:
    """The wallet's spec; its options are read from the environment when the
    server is built unless given (tests give them)."""

    def build(resources: Resources) -> ServiceParts:
        # The servicers and the background loops share the replica's one ledger.
        current = options if options is not None else WalletOptions.from_env()
        ledger = Ledger(resources.uow)
        stripe = StripeClient(current)
        payments = Payments(resources.uow, stripe, current)
        plans = Plans(resources.uow, stripe, current)
        return ServiceParts(
            servicers=lambda server: api.register(server, resources, ledger, payments, plans),
            consumers=lambda: events.consumers(resources, current),
            background=lambda: background.loops(ledger, current),
        )

    return ServiceSpec(name="wallet", build=build, migrations=MIGRATIONS)


SPEC = make_spec()
