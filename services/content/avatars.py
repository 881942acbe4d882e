"""Avatars: which of a user's assets may be their profile picture, for auth
(klik.content.v1.AvatarService, internal). Auth owns profiles and stores the URL
answered here; content keeps nothing, so resolving is one read transaction."""

from __future__ import annotations

from kit.db import UnitOfWork
from kit.errors import InvalidArgument
from services.content import domain, store
from services.content.domain import Asset


class Avatars:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def resolve(self, user_id: str, asset_id: str) -> Asset:
        """`user_id`'s asset `asset_id`, when it can be their avatar: NOT_FOUND
        `ASSET_NOT_FOUND` when it is missing or another user's, INVALID_ARGUMENT
        `AVATAR_NOT_IMAGE` when it is no image."""
        for field, value in (("user_id", user_id), ("asset_id", asset_id)):
            if not value:
                raise InvalidArgument(
                    "INVALID_ARGUMENT", f"{field} is required", details={"field": field}
                )
        asset = None
        if domain.plausible_id(asset_id):
            async with self._uow.read() as session:
                asset = await store.get_asset(session, asset_id, user_id)
        if asset is None:
            raise domain.asset_not_found(asset_id)
        return domain.avatar_of(asset)
