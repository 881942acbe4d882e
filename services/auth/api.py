"""gRPC servicer of the auth service: proto ⇄ domain, the caller checks of each RPC,
and the transactions that combine a change with its event."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeAlias

import grpc
import jwt
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.exc import IntegrityError

from kit import paging
from kit.errors import AlreadyExists, InvalidArgument, NotFound, Unauthenticated
from kit.server import Resources, token_lifetime
from klik.auth.v1 import auth_pb2, auth_pb2_grpc
from services.auth import domain, events, store
from services.auth.domain import Account
from services.auth.keys import Keyring
from services.auth.passwords import Passwords
from services.auth.sessions import Issued, Sessions
from services.auth.settings import AuthOptions
from services.auth.throttle import Throttle

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

LIST_USERS = "auth.ListUsers"  # the RPC ListUsers page tokens belong to


def user_message(account: Account) -> auth_pb2.User:
    created_at = Timestamp()
    created_at.FromDatetime(account.created_at)
    return auth_pb2.User(
        id=account.id,
        email=account.email,
        display_name=account.display_name,
        role=account.role,
        created_at=created_at,
    )


def client_address(context: Context) -> str:
    """The end user's address: the first hop of `x-forwarded-for`, which the gateway
    sets, else the gRPC peer. Only the gateway and other services reach auth, so the
    header is as trustworthy as they are."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-forwarded-for" and isinstance(value, str):
            first = value.split(",")[0].strip()
            if first:
                return first[:100]
    kind, _, rest = str(context.peer()).partition(":")
    if kind in ("ipv4", "ipv6"):
        return rest.rpartition(":")[0].strip("[]")
    return f"{kind}:{rest}"[:100]


def invalid_credentials() -> Unauthenticated:
    return Unauthenticated("INVALID_CREDENTIALS", "email or password is wrong")


def user_not_found(user_id: str) -> NotFound:
    return NotFound("USER_NOT_FOUND", "no account has this id", details={"user_id": user_id})


class AuthApi(auth_pb2_grpc.AuthServiceServicer):
    """klik.auth.v1.AuthService."""

    def __init__(self, resources: Resources, options: AuthOptions) -> None:
        self.resources = resources
        self.options = options
        self.engine = resources.engine
        self.passwords = Passwords(options.argon2)
        self.keyring = Keyring.of_service(
            resources.engine, resources.settings, options.signing_key_rotation_seconds
        )
        self.sessions = Sessions(resources.engine, self.keyring, options, resources.settings)
        self.throttle = Throttle(
            resources.engine, account=options.account_throttle, address=options.address_throttle
        )

    # ---- public ------------------------------------------------------------------------

    async def Register(
        self, request: auth_pb2.RegisterRequest, context: Context
    ) -> auth_pb2.RegisterResponse:
        email = domain.valid_email(request.email)
        password = domain.valid_password(request.password)
        display_name = domain.valid_display_name(request.display_name)
        if await self._account_by_email(email) is not None:
            raise self._email_taken()  # before the costly hash
        account = Account(
            id=str(uuid.uuid4()),
            email=email,
            display_name=display_name,
            role=domain.role_for_new_account(email, self.options.admin_emails),
            password_hash=await self.passwords.hash(password),
            created_at=datetime.now(UTC),
        )
        try:
            async with self.engine.begin() as conn:
                await store.insert_account(conn, account)
                await events.user_registered(conn, account)
        except IntegrityError:
            # A concurrent registration of the same email won the unique index; this
            # transaction, its event included, is rolled back.
            raise self._email_taken() from None
        self.resources.events_committed()
        return auth_pb2.RegisterResponse(user=user_message(account))

    async def Login(
        self, request: auth_pb2.LoginRequest, context: Context
    ) -> auth_pb2.LoginResponse:
        email = domain.normalise_email(request.email)
        counters = [self.throttle.account(email), self.throttle.address(client_address(context))]
        await self.throttle.check(counters)
        account = await self._account_by_email(email)
        password = domain.normalise_password(request.password)
        # Unknown email and wrong password: same error, same work (a dummy hash check).
        if not await self.passwords.verify(account.password_hash if account else None, password):
            await self.throttle.failed(counters)
            raise invalid_credentials()
        assert account is not None
        await self.throttle.succeeded(counters[0])
        if self.passwords.needs_rehash(account.password_hash):
            await self._rehash(account, password)
        return auth_pb2.LoginResponse(**self._tokens(await self.sessions.start(account)))

    async def Refresh(
        self, request: auth_pb2.RefreshRequest, context: Context
    ) -> auth_pb2.RefreshResponse:
        issued = await self.sessions.refresh(request.refresh_token)
        return auth_pb2.RefreshResponse(**self._tokens(issued))

    async def GetJwks(
        self, request: auth_pb2.GetJwksRequest, context: Context
    ) -> auth_pb2.GetJwksResponse:
        keys = await self.keyring.public_keys()
        return auth_pb2.GetJwksResponse(keys=[auth_pb2.Jwk(**key) for key in keys])

    # ---- bearer ------------------------------------------------------------------------

    async def Logout(
        self, request: auth_pb2.LogoutRequest, context: Context
    ) -> auth_pb2.LogoutResponse:
        caller = await self.resources.callers.user(context)
        await self.sessions.end(request.refresh_token, caller.user_id)
        return auth_pb2.LogoutResponse()

    async def GetMe(
        self, request: auth_pb2.GetMeRequest, context: Context
    ) -> auth_pb2.GetMeResponse:
        caller = await self.resources.callers.user(context)
        return auth_pb2.GetMeResponse(user=user_message(await self._account(caller.user_id)))

    async def ChangePassword(
        self, request: auth_pb2.ChangePasswordRequest, context: Context
    ) -> auth_pb2.ChangePasswordResponse:
        caller = await self.resources.callers.user(context)
        account = await self._account(caller.user_id)
        counter = self.throttle.account(account.email)
        await self.throttle.check([counter])
        new_password = domain.valid_password(request.new_password)
        current = domain.normalise_password(request.current_password)
        if not await self.passwords.verify(account.password_hash, current):
            await self.throttle.failed([counter])
            raise invalid_credentials()
        await self.throttle.succeeded(counter)
        new_hash = await self.passwords.hash(new_password)
        # The session the caller's token came from stays; every other one ends.
        session_id = jwt.decode(caller.token, options={"verify_signature": False}).get("sid")
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            if not await store.replace_password_hash(conn, account.id, new_hash):
                raise user_not_found(account.id)
            await store.revoke_sessions_of(
                conn,
                account.id,
                now,
                store.RevokeReason.PASSWORD_CHANGED,
                keep=session_id if isinstance(session_id, str) else None,
            )
        return auth_pb2.ChangePasswordResponse()

    # ---- admin -------------------------------------------------------------------------

    async def ListUsers(
        self, request: auth_pb2.ListUsersRequest, context: Context
    ) -> auth_pb2.ListUsersResponse:
        await self.resources.callers.user(context, domain.ADMIN)
        size = paging.page_size(request.page_size)
        after = self._position(paging.decode_cursor(LIST_USERS, request.page_token))
        async with self.engine.connect() as conn:
            accounts = await store.list_accounts(conn, size + 1, after)
            await conn.rollback()
        page, more = accounts[:size], len(accounts) > size
        next_token = ""
        if more:
            last = page[-1]
            next_token = paging.encode_cursor(
                LIST_USERS, {"created_at": last.created_at.isoformat(), "id": last.id}
            )
        return auth_pb2.ListUsersResponse(
            users=[user_message(account) for account in page], next_page_token=next_token
        )

    async def SetRole(
        self, request: auth_pb2.SetRoleRequest, context: Context
    ) -> auth_pb2.SetRoleResponse:
        await self.resources.callers.user(context, domain.ADMIN)
        role = domain.valid_role(request.role)
        async with self.engine.begin() as conn:
            account = await store.account_by_id(conn, request.user_id, for_update=True)
            if account is None:
                raise user_not_found(request.user_id)
            if account.role != role:
                await store.set_role(conn, account.id, role)
                await events.user_role_changed(conn, account.id, account.role, role)
        self.resources.events_committed()
        return auth_pb2.SetRoleResponse(user=user_message(replace(account, role=role)))

    async def DeleteUser(
        self, request: auth_pb2.DeleteUserRequest, context: Context
    ) -> auth_pb2.DeleteUserResponse:
        await self.resources.callers.user(context, domain.ADMIN)
        async with self.engine.begin() as conn:
            if not await store.delete_account(conn, request.user_id):
                raise user_not_found(request.user_id)
            await events.user_deleted(conn, request.user_id)
        self.resources.events_committed()
        # This replica refuses the user's access tokens at once; the others (and every
        # other service) do when `user.deleted` reaches them (kit.revocations).
        self.resources.callers.revoke(
            request.user_id, for_seconds=token_lifetime(self.resources.settings)
        )
        return auth_pb2.DeleteUserResponse()

    # ---- helpers -----------------------------------------------------------------------

    async def _account_by_email(self, email: str) -> Account | None:
        async with self.engine.connect() as conn:
            account = await store.account_by_email(conn, email)
            await conn.rollback()
        return account

    async def _account(self, user_id: str) -> Account:
        """The caller's account; gone when it was deleted after the token was issued."""
        async with self.engine.connect() as conn:
            account = await store.account_by_id(conn, user_id)
            await conn.rollback()
        if account is None:
            raise user_not_found(user_id)
        return account

    async def _rehash(self, account: Account, password: str) -> None:
        """Store the password's hash under the current parameters (they changed since
        it was hashed: OWASP recommends upgrading on the next successful login)."""
        new_hash = await self.passwords.hash(password)
        async with self.engine.begin() as conn:
            await store.replace_password_hash(
                conn, account.id, new_hash, old_hash=account.password_hash
            )

    def _tokens(self, issued: Issued) -> dict[str, Any]:
        return {
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "token_type": "Bearer",
            "expires_in": issued.expires_in,
            "user": user_message(issued.account),
        }

    @staticmethod
    def _position(position: paging.Position | None) -> tuple[datetime, str] | None:
        """(created_at, id) of the last account served, from a ListUsers page token."""
        if position is None:
            return None
        created_at, user_id = position.get("created_at"), position.get("id")
        try:
            if isinstance(created_at, str) and isinstance(user_id, str):
                parsed = datetime.fromisoformat(created_at)
                if parsed.tzinfo is not None:
                    return parsed, user_id
        except ValueError:
            pass
        raise InvalidArgument("INVALID_PAGE_TOKEN", "page_token was not issued by this RPC")

    @staticmethod
    def _email_taken() -> AlreadyExists:
        return AlreadyExists("EMAIL_TAKEN", "an account with this email exists")


def register(
    server: grpc.aio.Server, resources: Resources, options: AuthOptions | None = None
) -> Sequence[str]:
    api = AuthApi(resources, options if options is not None else AuthOptions.from_env())
    auth_pb2_grpc.add_AuthServiceServicer_to_server(api, server)
    return (auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,)
