"""Gateway configuration from `KLIK_GATEWAY_*` variables (README § Configuration)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.clientaddr import TrustedProxies, parse_networks
from gateway.policy import CREDENTIALS, READ, WRITE
from gateway.ratelimit import Rate
from kit.assets import AssetSettings
from kit.assets.uploads import UploadSettings
from kit.config import (
    GATEWAY_PORT,
    SERVICE_PORTS,
    env_float,
    env_int,
    env_str,
    nats_url,
    service_address,
)
from kit.tokens import DEFAULT_AUDIENCE, DEFAULT_ISSUER

# Route class -> (variable, default): requests per period per client address (see
# gateway.policy).
RATE_VARIABLES: Mapping[str, tuple[str, str]] = {
    CREDENTIALS: ("KLIK_GATEWAY_RATE_AUTH", "30/60"),
    READ: ("KLIK_GATEWAY_RATE_READ", "1200/60"),
    WRITE: ("KLIK_GATEWAY_RATE_WRITE", "300/60"),
}
# Route class -> (variable, default): requests per period per signed-in user, drawn
# beside the address bucket. Credential routes are public: no user to count.
USER_RATE_VARIABLES: Mapping[str, tuple[str, str]] = {
    READ: ("KLIK_GATEWAY_USER_RATE_READ", "600/60"),
    WRITE: ("KLIK_GATEWAY_USER_RATE_WRITE", "120/60"),
}
# Route class -> (variable, default): the same per-user limits for callers whose
# access token has the role `premium` (a plan's perk); they draw on these instead.
PREMIUM_RATE_VARIABLES: Mapping[str, tuple[str, str]] = {
    READ: ("KLIK_GATEWAY_PREMIUM_RATE_READ", "1200/60"),
    WRITE: ("KLIK_GATEWAY_PREMIUM_RATE_WRITE", "300/60"),
}
# Route class -> variable overriding KLIK_GATEWAY_TIMEOUT_SECONDS for that class.
TIMEOUT_VARIABLES: Mapping[str, str] = {
    CREDENTIALS: "KLIK_GATEWAY_TIMEOUT_AUTH",
    READ: "KLIK_GATEWAY_TIMEOUT_READ",
    WRITE: "KLIK_GATEWAY_TIMEOUT_WRITE",
}


@dataclass(frozen=True)
class GatewaySettings:
    host: str
    port: int
    nats_url: str
    upstreams: Mapping[str, str]  # service name -> gRPC address (kit.rpc.target form)
    max_body_bytes: int
    grace_seconds: float  # how long a stopping gateway lets in-flight requests finish
    log_level: str
    timeout_seconds: float  # deadline of each upstream call
    cors_origins: tuple[str, ...]  # allowed browser origins; "*" allows any
    rate_limits: Mapping[str, Rate | None]  # route class -> rate (None: unlimited)
    user_rate_limits: Mapping[str, Rate | None] = field(default_factory=dict)
    premium_rate_limits: Mapping[str, Rate | None] = field(default_factory=dict)
    timeouts: Mapping[str, float] = field(default_factory=dict)  # route class -> seconds
    token_issuer: str = DEFAULT_ISSUER
    token_audience: str = DEFAULT_AUDIENCE
    token_leeway_seconds: float = 30.0
    access_token_ttl_seconds: float = 900.0  # how long revoked users stay revoked
    events: EventStreamSettings = field(default_factory=lambda: EventStreamSettings())
    # Streaming RPC routes (gateway.transcoding.streaming): the longest a call may run
    # (its gRPC deadline), and how many a user may hold open on this replica.
    stream_max_seconds: float = 3600.0
    stream_max_per_user: int = 10
    assets: AssetSettings = field(default_factory=lambda: AssetSettings.from_env({}))
    # Signed upload URLs it takes bodies on (PUT /v1/uploads/{id}/content).
    uploads: UploadSettings = field(default_factory=lambda: UploadSettings.from_env({}))
    max_headers: int = 100  # more request headers than this: 431
    max_header_bytes: int = 16384  # request headers (names + values) larger than this: 431
    # Peers whose X-Forwarded-For is believed (gateway.clientaddr); none by default.
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)

    def timeout(self, route_class: str) -> float:
        return self.timeouts.get(route_class, self.timeout_seconds)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewaySettings:
        origins = env_str("KLIK_GATEWAY_CORS_ORIGINS", "", env)
        return cls(
            host=env_str("KLIK_GATEWAY_HOST", "127.0.0.1", env),
            port=env_int("KLIK_GATEWAY_PORT", GATEWAY_PORT, env),
            nats_url=nats_url(env),
            upstreams={name: service_address(name, env) for name in SERVICE_PORTS},
            max_body_bytes=env_int("KLIK_GATEWAY_MAX_BODY_BYTES", 1024 * 1024, env),
            max_headers=env_int("KLIK_GATEWAY_MAX_HEADERS", 100, env),
            max_header_bytes=env_int("KLIK_GATEWAY_MAX_HEADER_BYTES", 16384, env),
            grace_seconds=env_float("KLIK_GRACE_SECONDS", 10.0, env),
            log_level=env_str("KLIK_LOG_LEVEL", "INFO", env).upper(),
            timeout_seconds=env_float("KLIK_GATEWAY_TIMEOUT_SECONDS", 10.0, env),
            cors_origins=tuple(o.strip().rstrip("/") for o in origins.split(",") if o.strip()),
            rate_limits={
                route_class: Rate.parse(variable, env_str(variable, default, env))
                for route_class, (variable, default) in RATE_VARIABLES.items()
            },
            user_rate_limits={
                route_class: Rate.parse(variable, env_str(variable, default, env))
                for route_class, (variable, default) in USER_RATE_VARIABLES.items()
            },
            premium_rate_limits={
                route_class: Rate.parse(variable, env_str(variable, default, env))
                for route_class, (variable, default) in PREMIUM_RATE_VARIABLES.items()
            },
            timeouts={
                route_class: env_float(variable, 0.0, env)
                for route_class, variable in TIMEOUT_VARIABLES.items()
                if env_float(variable, 0.0, env) > 0
            },
            token_issuer=env_str("KLIK_TOKEN_ISSUER", DEFAULT_ISSUER, env),
            token_audience=env_str("KLIK_TOKEN_AUDIENCE", DEFAULT_AUDIENCE, env),
            token_leeway_seconds=env_float("KLIK_TOKEN_LEEWAY_SECONDS", 30.0, env),
            access_token_ttl_seconds=env_float("KLIK_ACCESS_TOKEN_TTL_SECONDS", 900.0, env),
            events=EventStreamSettings(
                heartbeat_seconds=env_float("KLIK_GATEWAY_SSE_HEARTBEAT_SECONDS", 15.0, env),
                retry_ms=env_int("KLIK_GATEWAY_SSE_RETRY_MS", 3000, env),
                max_per_user=env_int("KLIK_GATEWAY_SSE_MAX_PER_USER", 5, env),
                buffer=env_int("KLIK_GATEWAY_SSE_BUFFER", 1000, env),
            ),
            stream_max_seconds=env_float("KLIK_GATEWAY_STREAM_MAX_SECONDS", 3600.0, env),
            stream_max_per_user=env_int("KLIK_GATEWAY_STREAM_MAX_PER_USER", 10, env),
            assets=AssetSettings.from_env(env),
            uploads=UploadSettings.from_env(env),
            trusted_proxies=TrustedProxies(
                parse_networks(
                    "KLIK_GATEWAY_TRUSTED_PROXIES",
                    env_str("KLIK_GATEWAY_TRUSTED_PROXIES", "", env),
                )
            ),
        )


@dataclass(frozen=True)
class EventStreamSettings:
    """`GET /v1/events` (and, but for `max_per_user` and `buffer`, the streaming RPC
    routes): a comment line every `heartbeat_seconds` keeps proxies from
    closing an idle stream; `retry_ms` is the reconnect delay browsers are told;
    `buffer` events may wait for a slow client before its stream is closed (it
    resumes with Last-Event-ID, so closing loses nothing)."""

    heartbeat_seconds: float = 15.0
    retry_ms: int = 3000
    max_per_user: int = 5
    buffer: int = 1000
