"""Rows a use case writes before it starts the generation job they wait for (a chat
turn's user message, a lesson): hidden (`confirmed` false) until the job is known,
found again under the owner's idempotency key by a retried request, and removed
when the job cannot be started. One helper for every such table; each table has the
columns `id`, `owner_id`, `job_id`, `confirmed`, `idempotency_key`, `fingerprint`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Row, Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

T = TypeVar("T")


class PendingRows(Generic[T]):
    """`table`'s pending rows, read back as `load(row)`; `live` are the conditions a
    row must meet to be found by its key (e.g. not soft-deleted)."""

    def __init__(
        self, table: Table, load: Callable[[Row[Any]], T], *live: ColumnElement[bool]
    ) -> None:
        self.table = table
        self._load = load
        self._live = live

    async def add(
        self, session: AsyncSession, *, idempotency_key: str, fingerprint: str, **values: Any
    ) -> None:
        """Insert an unconfirmed row (no job yet) bound to the key, if there is one."""
        await session.execute(
            insert(self.table).values(
                job_id=None,
                confirmed=False,
                idempotency_key=idempotency_key or None,
                fingerprint=fingerprint,
                **values,
            )
        )

    async def by_key(self, session: AsyncSession, owner_id: str, key: str) -> T | None:
        """The row `owner_id` stored under `key`, confirmed or not."""
        columns = self.table.c
        row = (
            await session.execute(
                select(self.table).where(
                    columns.owner_id == owner_id, columns.idempotency_key == key, *self._live
                )
            )
        ).first()
        return None if row is None else self._load(row)

    async def confirm(self, session: AsyncSession, row_id: str, job_id: str) -> bool:
        """Show the row, answered by `job_id`. False when the row is gone (a concurrent
        refused copy of the request removed it)."""
        columns = self.table.c
        result = await session.execute(
            update(self.table).where(columns.id == row_id).values(job_id=job_id, confirmed=True)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    async def forget(self, session: AsyncSession, row_id: str) -> None:
        """Remove a row whose job could not be started (never a confirmed one)."""
        columns = self.table.c
        await session.execute(
            delete(self.table).where(columns.id == row_id, columns.confirmed.is_(False))
        )
