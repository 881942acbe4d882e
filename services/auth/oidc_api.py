"""The social sign-in RPCs of klik.auth.v1.AuthService (StartOidc, OidcCallback,
ExchangeOidcCode, LinkOidcIdentity): proto <-> oidc.py. AuthApi (api.py) takes them
in as a base class, so the servicer stays one object."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from klik.auth.v1 import auth_pb2
from services.auth.oidc import Callback, LinkRequired, SocialSignIn
from services.auth.settings import Network

if TYPE_CHECKING:
    from services.auth.api import Context


class OidcRpcs:
    social: SocialSignIn
    trusted_callers: tuple[Network, ...]

    async def StartOidc(
        self, request: auth_pb2.StartOidcRequest, context: Context
    ) -> auth_pb2.StartOidcResponse:
        url = await self.social.start(
            request.provider, request.redirect, request.app_state, request.login_hint
        )
        return auth_pb2.StartOidcResponse(redirect_url=url)

    async def OidcCallback(
        self, request: auth_pb2.OidcCallbackRequest, context: Context
    ) -> auth_pb2.OidcCallbackResponse:
        given = Callback(
            code=request.code,
            state=request.state,
            error=request.error,
            error_description=request.error_description,
            iss=request.iss,
        )
        url = await self.social.callback(request.provider, given)
        return auth_pb2.OidcCallbackResponse(redirect_url=url)

    async def ExchangeOidcCode(
        self, request: auth_pb2.ExchangeOidcCodeRequest, context: Context
    ) -> auth_pb2.ExchangeOidcCodeResponse:
        from services.auth.api import client_of, login_response

        result = await self.social.exchange(request.code, client_of(context, self.trusted_callers))
        if isinstance(result, LinkRequired):
            link = auth_pb2.OidcLinkRequired(
                link_token=result.link_token, email=result.email, provider=result.provider
            )
            return auth_pb2.ExchangeOidcCodeResponse(link_required=link)
        return auth_pb2.ExchangeOidcCodeResponse(tokens=login_response(result))

    async def LinkOidcIdentity(
        self, request: auth_pb2.LinkOidcIdentityRequest, context: Context
    ) -> auth_pb2.LinkOidcIdentityResponse:
        from services.auth.api import client_of, login_response

        issued = await self.social.link(
            request.link_token, request.password, client_of(context, self.trusted_callers)
        )
        return auth_pb2.LinkOidcIdentityResponse(tokens=login_response(issued))


__all__: Sequence[str] = ("OidcRpcs",)
