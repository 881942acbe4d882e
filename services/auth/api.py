"""gRPC servicer of the auth service: who may call each RPC, proto ⇄ domain, and
one call of a use case (accounts.py, sessions.py, admin.py, keys.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import grpc

from kit import paging
from kit.callers import Callers
from kit.timestamps import timestamp
from klik.auth.v1 import auth_pb2, auth_pb2_grpc
from services.auth import domain
from services.auth.accounts import Accounts
from services.auth.admin import Admin
from services.auth.domain import Account
from services.auth.keys import Keyring
from services.auth.sessions import Issued, Sessions

Context: TypeAlias = grpc.aio.ServicerContext[Any, Any]

# ListUsers page tokens: newest first by (created_at, id).
LIST_USERS = paging.TimeCursor("auth.ListUsers", time_field="created_at")


def user_message(account: Account) -> auth_pb2.User:
    return auth_pb2.User(
        id=account.id,
        email=account.email,
        display_name=account.display_name,
        role=account.role,
        created_at=timestamp(account.created_at),
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


class AuthApi(auth_pb2_grpc.AuthServiceServicer):
    """klik.auth.v1.AuthService."""

    def __init__(
        self,
        callers: Callers,
        accounts: Accounts,
        sessions: Sessions,
        admin: Admin,
        keyring: Keyring,
    ) -> None:
        self.callers = callers
        self.accounts = accounts
        self.sessions = sessions
        self.admin = admin
        self.keyring = keyring

    # ---- public ------------------------------------------------------------------------

    async def Register(
        self, request: auth_pb2.RegisterRequest, context: Context
    ) -> auth_pb2.RegisterResponse:
        account = await self.accounts.register(
            request.email, request.password, request.display_name
        )
        return auth_pb2.RegisterResponse(user=user_message(account))

    async def Login(
        self, request: auth_pb2.LoginRequest, context: Context
    ) -> auth_pb2.LoginResponse:
        issued = await self.accounts.login(request.email, request.password, client_address(context))
        return auth_pb2.LoginResponse(**tokens(issued))

    async def Refresh(
        self, request: auth_pb2.RefreshRequest, context: Context
    ) -> auth_pb2.RefreshResponse:
        issued = await self.sessions.refresh(request.refresh_token)
        return auth_pb2.RefreshResponse(**tokens(issued))

    async def GetJwks(
        self, request: auth_pb2.GetJwksRequest, context: Context
    ) -> auth_pb2.GetJwksResponse:
        keys = await self.keyring.public_keys()
        return auth_pb2.GetJwksResponse(keys=[auth_pb2.Jwk(**key) for key in keys])

    # ---- bearer ------------------------------------------------------------------------

    async def Logout(
        self, request: auth_pb2.LogoutRequest, context: Context
    ) -> auth_pb2.LogoutResponse:
        caller = await self.callers.user(context)
        await self.sessions.end(request.refresh_token, caller.user_id)
        return auth_pb2.LogoutResponse()

    async def GetMe(
        self, request: auth_pb2.GetMeRequest, context: Context
    ) -> auth_pb2.GetMeResponse:
        caller = await self.callers.user(context)
        return auth_pb2.GetMeResponse(
            user=user_message(await self.accounts.account(caller.user_id))
        )

    async def ChangePassword(
        self, request: auth_pb2.ChangePasswordRequest, context: Context
    ) -> auth_pb2.ChangePasswordResponse:
        caller = await self.callers.user(context)
        await self.accounts.change_password(
            caller.user_id, caller.session_id, request.current_password, request.new_password
        )
        return auth_pb2.ChangePasswordResponse()

    # ---- admin -------------------------------------------------------------------------

    async def ListUsers(
        self, request: auth_pb2.ListUsersRequest, context: Context
    ) -> auth_pb2.ListUsersResponse:
        await self.callers.user(context, domain.ADMIN)
        size = paging.page_size(request.page_size)
        page = await self.admin.users(size, LIST_USERS.decode(request.page_token))
        last = page.accounts[-1] if page.more else None
        return auth_pb2.ListUsersResponse(
            users=[user_message(account) for account in page.accounts],
            next_page_token=LIST_USERS.encode(None if last is None else (last.created_at, last.id)),
        )

    async def SetRole(
        self, request: auth_pb2.SetRoleRequest, context: Context
    ) -> auth_pb2.SetRoleResponse:
        await self.callers.user(context, domain.ADMIN)
        account = await self.admin.set_role(request.user_id, request.role)
        return auth_pb2.SetRoleResponse(user=user_message(account))

    async def DeleteUser(
        self, request: auth_pb2.DeleteUserRequest, context: Context
    ) -> auth_pb2.DeleteUserResponse:
        await self.callers.user(context, domain.ADMIN)
        await self.admin.delete_user(request.user_id)
        return auth_pb2.DeleteUserResponse()


def tokens(issued: Issued) -> dict[str, Any]:
    """The fields of LoginResponse and RefreshResponse."""
    return {
        "access_token": issued.access_token,
        "refresh_token": issued.refresh_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "user": user_message(issued.account),
    }


def register(server: grpc.aio.Server, api: AuthApi) -> Sequence[str]:
    """Add the servicer to `server`; the full names of the gRPC services added."""
    auth_pb2_grpc.add_AuthServiceServicer_to_server(api, server)
    return (auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name,)
