"""The wallet's background loops, started once the service is ready and run by every
replica while it serves: the hold sweeper (expire open holds past `expires_at`),
the lot sweeper (expire what is left of credit lots past their `expires_at`) and
the pruning of old idempotency keys. All are safe to run in several replicas at
once."""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from datetime import timedelta
from typing import Any

from kit.periodic import every
from services.wallet.ledger import Ledger
from services.wallet.settings import WalletOptions


def loops(ledger: Ledger, options: WalletOptions) -> Sequence[Coroutine[Any, Any, None]]:
    retention = timedelta(hours=options.key_retention_hours)
    return (
        every(options.sweep_interval, ledger.expire_due, "expired holds"),
        every(
            options.expiry_sweep_interval, ledger.expire_lots_due, "wallets with credits expired"
        ),
        every(options.prune_interval, lambda: ledger.prune_keys(retention), "pruned keys"),
    )
