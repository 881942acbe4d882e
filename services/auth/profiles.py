"""Profiles: the public side of an account (UpdateMe, GetUser), each one `uow`
transaction.

A handle is unique whatever its case: the unique index on lower(handle) decides
between concurrent claims (one update wins, the others get HANDLE_TAKEN), so no
check-then-write race can hand one handle to two accounts. A change that changes
something publishes `user.profile_changed` in its own transaction.

An avatar is an asset of content's: setting `avatar_asset_id` first asks content
(content_client.Avatars, before the transaction, which holds no lock while it
waits) for the file URL of that asset, refused unless it is the caller's own image;
auth stores the URL with the id and publishes it. "" removes both. Content keeps
no link back: when the asset disappears while the account stays (nothing deletes
single assets today; a user's assets go only with the account, which takes the
profile with it), the stored URL stays until the user sets or clears the avatar
again, and clients show their fallback picture for a file that no longer loads."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy.exc import IntegrityError

from kit.db import UnitOfWork
from services.auth import domain, events, store
from services.auth.content_client import Avatars
from services.auth.domain import Account, Profile


class Profiles:
    def __init__(self, uow: UnitOfWork, avatars: Avatars) -> None:
        self._uow = uow
        self._avatars = avatars

    async def update(self, user_id: str, changes: Profile, paths: list[str]) -> Account:
        """The account with the `paths` of its profile taken from `changes`."""
        fields = domain.update_mask(paths)
        avatar_url: str | None = None  # None: the avatar is not changing
        if "avatar_asset_id" in fields:
            asset_id = domain.valid_avatar_asset_id(changes.avatar_asset_id)
            avatar_url = await self._avatars.url(user_id, asset_id) if asset_id else ""
        try:
            async with self._uow.write() as session:
                account = await store.account_by_id(session, user_id, for_update=True)
                if account is None:
                    raise domain.user_not_found(user_id)
                current = domain.profile_of(account)
                profile = domain.updated_profile(current, changes, fields)
                if avatar_url is not None:
                    profile = replace(profile, avatar_url=avatar_url)
                if profile == current:
                    return account
                await store.set_profile(session, user_id, profile)
                account = domain.with_profile(account, profile)
                await events.user_profile_changed(session, account)
        except IntegrityError:
            # Another account holds the handle (or just won it): nothing changed.
            raise domain.handle_taken() from None
        return account

    async def public(self, handle_or_id: str) -> Account:
        """The account a handle (any case) or an id names; USER_NOT_FOUND otherwise."""
        key = handle_or_id.strip()
        async with self._uow.read() as session:
            if domain.looks_like_id(key):
                account = await store.account_by_id(session, key)
            else:
                account = await store.account_by_handle(session, key)
        if account is None:
            raise domain.user_not_found(handle_or_id)
        return account
