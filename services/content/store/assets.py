"""Assets: one per succeeded generation job, owned by the job's user."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import as_utc, dialect_insert
from services.content.domain import Asset
from services.content.store.tables import assets


def _asset(row: Row[Any]) -> Asset:
    return Asset(
        id=row.id,
        owner_id=row.owner_id,
        job_id=row.job_id or "",
        kind=row.kind,
        text=row.text,
        url=row.url,
        mime_type=row.mime_type,
        created_at=as_utc(row.created_at),
    )


async def add_asset(session: AsyncSession, asset: Asset) -> bool:
    """Insert the asset unless its job already has one. Returns whether it did; a
    racing insert for the same job waits for the other transaction, then inserts
    nothing."""
    created = await session.scalar(
        dialect_insert(session, assets)
        .values(
            id=asset.id,
            owner_id=asset.owner_id,
            job_id=asset.job_id,
            kind=asset.kind,
            text=asset.text,
            url=asset.url,
            mime_type=asset.mime_type,
            created_at=asset.created_at,
        )
        .on_conflict_do_nothing(index_elements=["job_id"])
        .returning(assets.c.id)
    )
    return created is not None


async def get_asset(session: AsyncSession, asset_id: str, owner_id: str) -> Asset | None:
    row = (
        await session.execute(
            select(assets).where(assets.c.id == asset_id, assets.c.owner_id == owner_id)
        )
    ).first()
    return None if row is None else _asset(row)


async def assets_by_id(session: AsyncSession, ids: Iterable[str]) -> dict[str, Asset]:
    """The assets of `ids` that exist, by id (whoever owns them: the caller decides
    who may see which)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    rows = await session.execute(select(assets).where(assets.c.id.in_(wanted)))
    return {row.id: _asset(row) for row in rows}


async def owned_assets(session: AsyncSession, owner_id: str, ids: Sequence[str]) -> set[str]:
    """Which of `ids` are assets of `owner_id`."""
    if not ids:
        return set()
    rows = await session.scalars(
        select(assets.c.id).where(assets.c.owner_id == owner_id, assets.c.id.in_(list(ids)))
    )
    return set(rows)


async def list_assets(
    session: AsyncSession, owner_id: str, *, kind: str, before: int | None, limit: int
) -> tuple[list[Asset], int | None]:
    """A user's assets newest first, and the seq to continue below (None: last page)."""
    query = select(assets).where(assets.c.owner_id == owner_id)
    if kind:
        query = query.where(assets.c.kind == kind)
    if before is not None:
        query = query.where(assets.c.seq < before)
    rows = (await session.execute(query.order_by(assets.c.seq.desc()).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return [_asset(row) for row in rows], rows[-1].seq if more else None
