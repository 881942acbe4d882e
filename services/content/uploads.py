"""Use cases of uploads: granting one (a signed URL on the gateway, kit.assets.uploads)
and completing it (the stored file becomes an asset of kind UPLOAD). The gateway
stores the bytes; content checks them again when it completes the upload."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from kit import idempotency
from kit.assets import AssetSettings, AssetStore
from kit.assets.uploads import (
    SNIFF_BYTES,
    UPLOAD_TYPES,
    UploadGrant,
    UploadSettings,
    sniff,
    upload_key,
)
from kit.clock import Clock, utc_now
from kit.db import UnitOfWork
from services.content import domain, store
from services.content.domain import Asset, Upload, Viewer


@dataclass(frozen=True)
class GrantedUpload:
    upload_id: str
    upload_url: str
    expires_at: datetime


class Uploads:
    def __init__(
        self,
        uow: UnitOfWork,
        assets: AssetStore,
        asset_settings: AssetSettings,
        settings: UploadSettings,
        *,
        clock: Clock = utc_now,
    ) -> None:
        self._uow = uow
        self._assets = assets
        self._asset_settings = asset_settings
        self._settings = settings
        self._clock = clock

    async def create(
        self, viewer: Viewer, content_type: str, size: int, *, key: str = ""
    ) -> GrantedUpload:
        """A new upload; with an idempotency `key`, the same key and request give the
        first upload again (the same URL while it lasts)."""
        key = idempotency.check_key(key)
        fingerprint = idempotency.fingerprint("CreateUpload", (content_type, size))
        content_type = domain.upload_request(
            content_type, size, types=UPLOAD_TYPES, max_bytes=self._settings.max_bytes
        )
        if not self._settings.enabled:
            raise domain.uploads_disabled()
        now = self._clock()
        # Whole seconds: the URL carries the expiry, and the row must agree with it.
        expires = int(now.timestamp() + self._settings.url_ttl_seconds)
        upload_id = str(uuid.uuid4())
        upload = Upload(
            id=upload_id,
            owner_id=viewer.user_id,
            content_type=content_type,
            size=size,
            key=upload_key(upload_id, content_type),
            expires_at=datetime.fromtimestamp(expires, now.tzinfo),
            asset_id=None,
            created_at=now,
        )
        async with self._uow.write() as session:
            upload, earlier = await store.add_upload(
                session, upload, key=key, fingerprint=fingerprint
            )
        idempotency.check_replay(earlier, fingerprint)
        grant = UploadGrant(
            upload.id, upload.content_type, upload.size, int(upload.expires_at.timestamp())
        )
        return GrantedUpload(upload.id, grant.url(self._settings), upload.expires_at)

    async def complete(self, viewer: Viewer, upload_id: str) -> Asset:
        async with self._uow.write() as session:
            upload = None
            if domain.plausible_id(upload_id):
                upload = await store.get_upload(session, upload_id, viewer.user_id, lock=True)
            if upload is None:
                raise domain.upload_not_found(upload_id)
            if upload.asset_id is not None:
                asset = await store.get_asset(session, upload.asset_id, viewer.user_id)
                if asset is not None:
                    return asset
            if not await self._stored_as_granted(upload):
                raise domain.upload_not_received(upload, self._clock())
            asset = Asset(
                id=str(uuid.uuid4()),
                owner_id=upload.owner_id,
                job_id="",
                kind=domain.UPLOAD_KIND,
                text="",
                url=self._asset_settings.url(upload.key),
                mime_type=upload.content_type,
                created_at=self._clock(),
            )
            await store.complete_upload(session, upload, asset)
            return asset

    async def _stored_as_granted(self, upload: Upload) -> bool:
        """Whether the upload's key holds exactly what was granted: its size, and the
        magic bytes of its type (the gateway checked both; this trusts no writer)."""
        info = await self._assets.stat(upload.key)
        if info is None or info.size != upload.size:
            return False
        head = b""
        async for chunk in self._assets.read(upload.key, 0, SNIFF_BYTES):
            head += chunk
        return sniff(head) == upload.content_type
