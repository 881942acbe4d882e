"""Administration: the use cases of the admin RPCs (ListUsers, SetRole, DeleteUser),
each one `uow` transaction. Who may call them (the role admin) is api.py's check."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from kit import daily
from kit.callers import Callers
from kit.clock import utc_now
from kit.db import UnitOfWork
from services.auth import domain, events, store
from services.auth.domain import Account


@dataclass(frozen=True)
class UserPage:
    accounts: list[Account]
    more: bool  # whether accounts after the last one exist


@dataclass(frozen=True)
class UsersDay:
    day: date
    signups: int
    active: int


class Admin:
    def __init__(self, uow: UnitOfWork, callers: Callers, token_lifetime: float) -> None:
        self._uow = uow
        self._callers = callers
        self._token_lifetime = token_lifetime

    async def users(
        self, size: int, after: tuple[datetime, str] | None, query: str = ""
    ) -> UserPage:
        """Up to `size` accounts, newest first, after the (created_at, id) `after`;
        with `query`, only those whose email, handle or display name contains it
        (any case; INVALID_QUERY when too long)."""
        matching = domain.valid_user_query(query)
        async with self._uow.read() as session:
            accounts = await store.list_accounts(session, size + 1, after, matching)
        return UserPage(accounts[:size], len(accounts) > size)

    async def set_role(self, user_id: str, role: str) -> Account:
        """The account with its new role; `user.role_changed` when it changed."""
        role = domain.valid_role(role)
        async with self._uow.write() as session:
            # The admins' rows first, in id order, then the account's: concurrent
            # demotions lock in one order, wait for each other, and cannot deadlock.
            admins = await store.lock_admins(session) if role != domain.ADMIN else []
            account = await store.account_by_id(session, user_id, for_update=True)
            if account is None:
                raise domain.user_not_found(user_id)
            if account.role == domain.ADMIN != role:
                domain.keeps_an_admin(admins, account.id)
            if account.role != role:
                await store.set_role(session, account.id, role)
                await events.user_role_changed(session, account.id, account.role, role)
        return replace(account, role=role)

    async def delete_user(self, user_id: str) -> None:
        """Delete the account with its sessions; `user.deleted`."""
        async with self._uow.write() as session:
            admins = await store.lock_admins(session)  # first, as in set_role
            domain.keeps_an_admin(admins, user_id)
            if not await store.delete_account(session, user_id):
                raise domain.user_not_found(user_id)
            await events.user_deleted(session, user_id)
        # This replica refuses the user's access tokens at once; the others (and every
        # other service) do when `user.deleted` reaches them (kit.revocations).
        self._callers.revoke(user_id, for_seconds=self._token_lifetime)

    async def summary(self, days: int) -> list[UsersDay]:
        """GetUsersSummary: sign-ups and active accounts per UTC day (INVALID_DAYS)."""
        window = daily.window(days, utc_now())
        async with self._uow.read() as session:
            signups = await store.signups_per_day(session, window.start)
            active = await store.active_per_day(session, window.start)
        return [
            UsersDay(day, signups.get(day.isoformat(), 0), active.get(day.isoformat(), 0))
            for day in window.days
        ]
