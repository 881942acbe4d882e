"""gRPC servicer of the auth service: who may call each RPC, proto ⇄ domain, and
one call of a use case (accounts.py, profiles.py, sessions.py, admin.py, keys.py)."""

from __future__ import annotations

import ipaddress
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
from services.auth.domain import Account, Profile
from services.auth.email_change import EmailChange
from services.auth.keys import Keyring
from services.auth.oidc import SocialSignIn
from services.auth.oidc_api import OidcRpcs
from services.auth.profiles import Profiles
from services.auth.recovery import Recovery
from services.auth.sessions import Issued, Sessions
from services.auth.settings import Network
from services.auth.store import Client, LiveSession
from services.auth.two_factor import Challenge, Proof, TwoFactor
from services.auth.verification import Verification

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
        email_verified=account.email_verified,
        handle=account.handle,
        bio=account.bio,
        avatar_asset_id=account.avatar_asset_id,
        avatar_url=account.avatar_url,
    )


def public_user_message(account: Account) -> auth_pb2.PublicUser:
    """What anyone may see of an account: never the email or the role."""
    return auth_pb2.PublicUser(
        id=account.id,
        handle=account.handle,
        display_name=account.display_name,
        bio=account.bio,
        avatar_url=account.avatar_url,
        created_at=timestamp(account.created_at),
    )


def session_message(live: LiveSession, current_id: str) -> auth_pb2.Session:
    return auth_pb2.Session(
        id=live.id,
        created_at=timestamp(live.created_at),
        last_used_at=timestamp(live.last_used_at),
        user_agent=live.user_agent,
        client_address=live.client_address,
        current=live.id == current_id,
    )


# The one client address the gateway vouches for (it decides it itself, from the
# connection and its KLIK_GATEWAY_TRUSTED_PROXIES); `x-forwarded-for` is never read.
CLIENT_ADDRESS_KEY = "klik-client-address"
# The HTTP client's User-Agent, as the gateway passes it on (gateway.transcoding.metadata).
USER_AGENT_KEY = "klik-user-agent"
MAX_USER_AGENT_LENGTH = 300


def client_address(context: Context, trusted_callers: Sequence[Network]) -> str:
    """Whom to throttle: `klik-client-address` when the call comes from a klik
    channel (a gRPC peer in `trusted_callers`, KLIK_AUTH_TRUSTED_CALLERS: the
    gateway's and the services' networks), else the gRPC peer itself, so a client
    that reaches auth directly cannot choose the address it is counted under."""
    peer = peer_address(context)
    if _within(peer, trusted_callers):
        for key, value in context.invocation_metadata() or ():
            if key == CLIENT_ADDRESS_KEY and isinstance(value, str) and value.strip():
                return value.strip()[:100]
    return peer


def client_of(context: Context, trusted_callers: Sequence[Network]) -> Client:
    """Who makes a login or refresh, as ListSessions shows it: the client address
    (client_address) and the user agent the gateway passes on, else the gRPC
    client's own `user-agent`. Only shown to the account's owner, never trusted."""
    agents = dict.fromkeys((USER_AGENT_KEY, "user-agent"), "")
    for key, value in context.invocation_metadata() or ():
        if key in agents and isinstance(value, str) and not agents[key]:
            agents[key] = value.strip()
    agent = agents[USER_AGENT_KEY] or agents["user-agent"]
    return Client(agent[:MAX_USER_AGENT_LENGTH], client_address(context, trusted_callers))


def peer_address(context: Context) -> str:
    kind, _, rest = str(context.peer()).partition(":")
    if kind in ("ipv4", "ipv6"):
        return rest.rpartition(":")[0].strip("[]")
    return f"{kind}:{rest}"[:100]


def _within(address: str, networks: Sequence[Network]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address.startswith("unix:") and bool(networks)  # a local socket
    return any(parsed in network for network in networks)


class AuthApi(OidcRpcs, auth_pb2_grpc.AuthServiceServicer):
    """klik.auth.v1.AuthService (its social sign-in RPCs: oidc_api.py)."""

    def __init__(
        self,
        callers: Callers,
        accounts: Accounts,
        sessions: Sessions,
        admin: Admin,
        keyring: Keyring,
        verification: Verification,
        recovery: Recovery,
        profiles: Profiles,
        trusted_callers: Sequence[Network] = (),
        two_factor: TwoFactor | None = None,
        email_change: EmailChange | None = None,
        *,
        social: SocialSignIn,
    ) -> None:
        self.two_factor = two_factor
        self.email_change = email_change
        self.social = social
        self.profiles = profiles
        self.recovery = recovery
        self.verification = verification
        self.trusted_callers = tuple(trusted_callers)
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
            request.email, request.password, request.display_name, request.handle
        )
        return auth_pb2.RegisterResponse(user=user_message(account))

    async def Login(
        self, request: auth_pb2.LoginRequest, context: Context
    ) -> auth_pb2.LoginResponse:
        client = client_of(context, self.trusted_callers)
        issued = await self.accounts.login(request.email, request.password, client)
        return login_response(issued)

    async def Refresh(
        self, request: auth_pb2.RefreshRequest, context: Context
    ) -> auth_pb2.RefreshResponse:
        client = client_of(context, self.trusted_callers)
        issued = await self.sessions.refresh(request.refresh_token, client)
        return auth_pb2.RefreshResponse(**tokens(issued))

    async def VerifyEmail(
        self, request: auth_pb2.VerifyEmailRequest, context: Context
    ) -> auth_pb2.VerifyEmailResponse:
        account = await self.verification.verify(request.token)
        return auth_pb2.VerifyEmailResponse(user=user_message(account))

    async def RequestPasswordReset(
        self, request: auth_pb2.RequestPasswordResetRequest, context: Context
    ) -> auth_pb2.RequestPasswordResetResponse:
        address = client_address(context, self.trusted_callers)
        await self.recovery.request(request.email, address)
        return auth_pb2.RequestPasswordResetResponse()

    async def ConfirmPasswordReset(
        self, request: auth_pb2.ConfirmPasswordResetRequest, context: Context
    ) -> auth_pb2.ConfirmPasswordResetResponse:
        await self.recovery.confirm(request.token, request.new_password)
        return auth_pb2.ConfirmPasswordResetResponse()

    async def GetUser(
        self, request: auth_pb2.GetUserRequest, context: Context
    ) -> auth_pb2.GetUserResponse:
        account = await self.profiles.public(request.handle_or_id)
        return auth_pb2.GetUserResponse(user=public_user_message(account))

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

    async def ResendVerification(
        self, request: auth_pb2.ResendVerificationRequest, context: Context
    ) -> auth_pb2.ResendVerificationResponse:
        caller = await self.callers.user(context)
        await self.verification.resend(caller.user_id)
        return auth_pb2.ResendVerificationResponse()

    async def UpdateMe(
        self, request: auth_pb2.UpdateMeRequest, context: Context
    ) -> auth_pb2.UpdateMeResponse:
        caller = await self.callers.user(context)
        given = request.profile
        changes = Profile(given.display_name, given.handle, given.bio, given.avatar_asset_id)
        account = await self.profiles.update(
            caller.user_id, changes, list(request.update_mask.paths)
        )
        return auth_pb2.UpdateMeResponse(user=user_message(account))

    async def DeleteMe(
        self, request: auth_pb2.DeleteMeRequest, context: Context
    ) -> auth_pb2.DeleteMeResponse:
        caller = await self.callers.user(context)
        await self.accounts.delete_me(caller.user_id, request.password)
        return auth_pb2.DeleteMeResponse()

    async def ListSessions(
        self, request: auth_pb2.ListSessionsRequest, context: Context
    ) -> auth_pb2.ListSessionsResponse:
        caller = await self.callers.user(context)
        live = await self.sessions.sessions(caller.user_id)
        return auth_pb2.ListSessionsResponse(
            sessions=[session_message(one, caller.session_id) for one in live]
        )

    async def RevokeSession(
        self, request: auth_pb2.RevokeSessionRequest, context: Context
    ) -> auth_pb2.RevokeSessionResponse:
        caller = await self.callers.user(context)
        await self.sessions.revoke(caller.user_id, request.session_id)
        return auth_pb2.RevokeSessionResponse()

    # ---- admin -------------------------------------------------------------------------

    async def ListUsers(
        self, request: auth_pb2.ListUsersRequest, context: Context
    ) -> auth_pb2.ListUsersResponse:
        await self.callers.user(context, domain.ADMIN)
        size = paging.page_size(request.page_size)
        page = await self.admin.users(size, LIST_USERS.decode(request.page_token), request.query)
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

    # ---- account summaries ----

    async def GetUsersSummary(
        self, request: auth_pb2.GetUsersSummaryRequest, context: Context
    ) -> auth_pb2.GetUsersSummaryResponse:
        await self.callers.user(context, domain.ADMIN)
        days = await self.admin.summary(request.days)
        return auth_pb2.GetUsersSummaryResponse(
            days=[
                auth_pb2.UsersSummaryDay(
                    date=day.day.isoformat(), signups=day.signups, active_users=day.active
                )
                for day in days
            ]
        )

    # ---- two-factor sign-in and change of email ---------------------------------------

    def _two_factor(self) -> TwoFactor:
        if self.two_factor is None:
            raise NotImplementedError("two-factor sign-in is not wired")
        return self.two_factor

    def _email_change(self) -> EmailChange:
        if self.email_change is None:
            raise NotImplementedError("change of email is not wired")
        return self.email_change

    async def EnrollTotp(
        self, request: auth_pb2.EnrollTotpRequest, context: Context
    ) -> auth_pb2.EnrollTotpResponse:
        caller = await self.callers.user(context)
        enrolment = await self._two_factor().enrol(caller.user_id)
        return auth_pb2.EnrollTotpResponse(secret=enrolment.secret, otpauth_uri=enrolment.uri)

    async def ConfirmTotp(
        self, request: auth_pb2.ConfirmTotpRequest, context: Context
    ) -> auth_pb2.ConfirmTotpResponse:
        caller = await self.callers.user(context)
        codes = await self._two_factor().confirm(caller.user_id, request.code)
        return auth_pb2.ConfirmTotpResponse(recovery_codes=codes)

    async def DisableTotp(
        self, request: auth_pb2.DisableTotpRequest, context: Context
    ) -> auth_pb2.DisableTotpResponse:
        caller = await self.callers.user(context)
        await self._two_factor().disable(caller.user_id, Proof(request.code, request.recovery_code))
        return auth_pb2.DisableTotpResponse()

    async def LoginTwoFactor(
        self, request: auth_pb2.LoginTwoFactorRequest, context: Context
    ) -> auth_pb2.LoginTwoFactorResponse:
        client = client_of(context, self.trusted_callers)
        proof = Proof(request.code, request.recovery_code)
        issued = await self._two_factor().complete(request.challenge, proof, client)
        return auth_pb2.LoginTwoFactorResponse(**tokens(issued))

    async def RequestEmailChange(
        self, request: auth_pb2.RequestEmailChangeRequest, context: Context
    ) -> auth_pb2.RequestEmailChangeResponse:
        caller = await self.callers.user(context)
        await self._email_change().request(caller.user_id, request.new_email, request.password)
        return auth_pb2.RequestEmailChangeResponse()

    async def ConfirmEmailChange(
        self, request: auth_pb2.ConfirmEmailChangeRequest, context: Context
    ) -> auth_pb2.ConfirmEmailChangeResponse:
        account = await self._email_change().confirm(request.token)
        return auth_pb2.ConfirmEmailChangeResponse(user=user_message(account))


def login_response(issued: Issued | Challenge) -> auth_pb2.LoginResponse:
    """Login's answer: the tokens, or the challenge of a two-factor account's second
    step (LoginTwoFactor)."""
    if isinstance(issued, Challenge):
        return auth_pb2.LoginResponse(
            user=user_message(issued.account),
            two_factor_required=True,
            challenge=issued.token,
            challenge_expires_in=issued.expires_in,
        )
    return auth_pb2.LoginResponse(**tokens(issued))


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
