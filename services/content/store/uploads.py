"""Uploads: the grants CreateUpload makes, and the assets CompleteUpload turns them into."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import as_utc, dialect_insert
from services.content.domain import Asset, Upload
from services.content.store.tables import assets, uploads


def _upload(row: Row[Any]) -> Upload:
    return Upload(
        id=row.id,
        owner_id=row.owner_id,
        content_type=row.content_type,
        size=row.size,
        key=row.key,
        expires_at=as_utc(row.expires_at),
        asset_id=row.asset_id,
        created_at=as_utc(row.created_at),
    )


async def add_upload(
    session: AsyncSession, upload: Upload, *, key: str, fingerprint: str
) -> tuple[Upload, str]:
    """Insert the upload, unless the owner's idempotency `key` ("" for none) made one
    already: then that earlier upload (a racing insert waits for the other
    transaction, then inserts nothing). Returns the upload and the fingerprint it
    was asked with."""
    inserted = await session.scalar(
        dialect_insert(session, uploads)
        .values(
            id=upload.id,
            owner_id=upload.owner_id,
            content_type=upload.content_type,
            size=upload.size,
            key=upload.key,
            expires_at=upload.expires_at,
            asset_id=upload.asset_id,
            created_at=upload.created_at,
            idempotency_key=key or None,
            fingerprint=fingerprint,
        )
        .on_conflict_do_nothing(index_elements=["owner_id", "idempotency_key"])
        .returning(uploads.c.id)
    )
    if inserted is not None:
        return upload, fingerprint
    row = (
        await session.execute(
            select(uploads).where(
                uploads.c.owner_id == upload.owner_id, uploads.c.idempotency_key == key
            )
        )
    ).one()
    return _upload(row), str(row.fingerprint)


async def get_upload(
    session: AsyncSession, upload_id: str, owner_id: str, *, lock: bool = False
) -> Upload | None:
    """The owner's upload; `lock`: with its row lock, so one completion runs at a time."""
    query = select(uploads).where(uploads.c.id == upload_id, uploads.c.owner_id == owner_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return None if row is None else _upload(row)


async def complete_upload(session: AsyncSession, upload: Upload, asset: Asset) -> None:
    """Record the upload's asset (job_id NULL: no job made it) and link the two."""
    await session.execute(
        insert(assets).values(
            id=asset.id,
            owner_id=asset.owner_id,
            job_id=None,
            kind=asset.kind,
            text=asset.text,
            url=asset.url,
            mime_type=asset.mime_type,
            created_at=asset.created_at,
        )
    )
    await session.execute(
        update(uploads).where(uploads.c.id == upload.id).values(asset_id=asset.id)
    )
