"""What every API request passes before it costs anything upstream: the bearer token
(unless the route is public), then the rate limits of its address and its user."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from gateway.auth import EdgeAuth
from gateway.errors import GatewayError
from gateway.policy import bucket_draws, premium_class, user_class
from gateway.ratelimit import RateLimiter
from gateway.settings import GatewaySettings
from kit.tokens import AccessClaims


def limiter_for(settings: GatewaySettings) -> RateLimiter:
    rates = dict(settings.rate_limits)
    rates.update({user_class(name): rate for name, rate in settings.user_rate_limits.items()})
    rates.update({premium_class(name): rate for name, rate in settings.premium_rate_limits.items()})
    return RateLimiter(rates)


class Admission:
    def __init__(self, auth: EdgeAuth, limiter: RateLimiter) -> None:
        self.auth = auth
        self.limiter = limiter

    async def admit(
        self,
        connection: HTTPConnection,
        route_class: str,
        *,
        public: bool,
        query_token: bool = False,
    ) -> AccessClaims | None:
        """The caller's verified claims (None on a public route), or a GatewayError.
        The token is checked first: a forged token must not drain a real user's
        bucket, and an anonymous flood still drains its address's."""
        claims = (
            None if public else await self.auth.authenticate(connection, query_token=query_token)
        )
        subject = claims.subject if claims is not None else None
        role = claims.role if claims is not None else ""
        wait = self.limiter.check_all(bucket_draws(connection, route_class, subject, role))
        if wait:
            raise GatewayError(
                "RESOURCE_EXHAUSTED",
                f"too many requests: retry in {wait} s",
                code="RATE_LIMITED",
                details={"retry_after_seconds": wait},
                headers={"Retry-After": str(wait)},
            )
        return claims
