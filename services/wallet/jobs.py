"""Background jobs of the wallet service, run by every replica while it serves:
the hold sweeper (expire open holds past `expires_at`) and the pruning of old
idempotency keys. Both are safe to run in several replicas at once."""

from __future__ import annotations

from collections.abc import Coroutine, Sequence
from datetime import timedelta
from typing import Any

from kit.periodic import every
from kit.server import Resources
from services.wallet.ledger import Ledger
from services.wallet.settings import WalletOptions


def background(resources: Resources, options: WalletOptions) -> Sequence[Coroutine[Any, Any, None]]:
    ledger = Ledger(resources.sessions, committed=resources.events_committed)
    retention = timedelta(hours=options.key_retention_hours)
    return (
        every(options.sweep_interval, ledger.expire_due, "expired holds"),
        every(options.prune_interval, lambda: ledger.prune_keys(retention), "pruned keys"),
    )
