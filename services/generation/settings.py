"""The generation service's own settings, from `KLIK_*` environment variables
(README § Configuration): which providers exist and where, their models, the prices,
and how provider calls are timed, retried and broken.

Routing: a provider family is real when its key (or, for OpenAI-compatible servers
that need none, its base URL) is configured; LLM providers may also be listed, any
number of them, in KLIK_LLM_PROVIDERS, and aliases over their models in
KLIK_LLM_ALIASES. Every kind no real provider serves goes to the sandbox at
KLIK_SANDBOX_URL. With nothing configured, everything does, and TEXT/CHAT are also
served by the sandbox's Messages API (`sandbox-anthropic`), with the alias
`default-chat` over the two."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from kit.config import ConfigError, env_float, env_int, env_str
from services.generation.catalogue import (
    HEYGEN_MODELS,
    HEYGEN_URL,
    LEONARDO_MODELS,
    LEONARDO_URL,
    OPENAI_MODELS,
    OPENAI_URL,
    SANDBOX,
    SANDBOX_ALIAS,
    SANDBOX_ALIAS_TARGETS,
    SANDBOX_ANTHROPIC,
    Alias,
    Catalogue,
    Endpoint,
    Family,
    Model,
    Provider,
    check,
    parse_aliases,
    parse_llm_providers,
    parse_models,
    sandbox_anthropic,
    sandbox_provider,
)
from services.generation.domain import Kind
from services.generation.pricing import Prices
from services.generation.providers.backoff import PollSchedule, RetryPolicy
from services.generation.providers.breaker import BreakerPolicy
from services.generation.providers.connections import DEFAULT_MAX_CONNECTIONS
from services.generation.providers.http import Timeouts


@dataclass(frozen=True)
class ProviderPolicy:
    """How every provider call is made."""

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    timeouts: Timeouts = field(default_factory=Timeouts)
    polling: PollSchedule = field(default_factory=PollSchedule)
    listing_ttl_seconds: float = 600.0  # avatars and voices
    # HTTP connections to providers at once, all of them together (each streamed
    # reply holds one for its length): providers/connections.py.
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    # What the providers' webhooks are checked with (callbacks.py); "" turns them off.
    heygen_webhook_secret: str = ""
    leonardo_webhook_key: str = ""

    def __post_init__(self) -> None:
        if self.max_connections < 1:
            raise ValueError("KLIK_PROVIDER_MAX_CONNECTIONS must be at least 1")


# How long a job of each kind may take on its provider, start to result. Videos
# render for minutes (HeyGen: 5-15, more at peak).
DEFAULT_DEADLINES: Mapping[Kind, float] = {
    Kind.TEXT: 120.0,
    Kind.CHAT: 120.0,
    Kind.IMAGE: 300.0,
    Kind.AVATAR_VIDEO: 1800.0,
    Kind.IMAGE_TO_VIDEO: 600.0,
}


@dataclass(frozen=True)
class JobSettings:
    """How jobs are queued and worked on (README § Configuration)."""

    # Claim loops per replica. They only claim: a claimed job runs in its own task,
    # and one waiting for its provider holds no claimer, so this does not bound the
    # jobs in flight; `max_in_flight` and the per-provider limits do.
    workers: int = 4
    max_in_flight: int = 2000  # jobs in flight on one replica (memory), all providers
    # Jobs of one provider in flight on one replica, by provider name (what its plan
    # allows); a provider not named is bounded by `max_in_flight` alone.
    provider_in_flight: Mapping[str, int] = field(default_factory=dict)
    per_user: int = 16  # one user's jobs in flight on one replica
    lease_seconds: float = 30.0  # a dead worker's job is resumed this long after
    poll_seconds: float = 2.0  # the queue's safety-net poll (new jobs wake workers)
    # The longest a job may wait in the queue; its hold outlives this plus its deadline.
    max_queue_seconds: float = 3600.0
    # A job whose hold was not confirmed within this is given up (its hold released).
    pending_timeout_seconds: float = 60.0
    sweep_seconds: float = 5.0  # how often leftovers (holds to settle, stale rows) are swept
    max_attempts: int = 5  # claims of one job before it fails INTERNAL
    media_max_bytes: int = 512 * 1024 * 1024  # largest result file fetched
    # A streaming reply is saved to its job row at most this often, for WatchJob's
    # late joiners (they catch up from it; live deltas travel over NATS).
    stream_save_seconds: float = 0.25
    # CancelJob on a streaming job waits this long for its worker to close the
    # stream and charge the text so far, then ends the job itself.
    cancel_wait_seconds: float = 2.0

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError("workers must be 0 or more")
        if self.max_in_flight < 1 or self.per_user < 1:
            raise ValueError("max_in_flight and per_user must be at least 1")
        if any(limit < 1 for limit in self.provider_in_flight.values()):
            raise ValueError("a provider's in-flight limit must be at least 1")
        if self.lease_seconds <= 0 or self.poll_seconds <= 0 or self.sweep_seconds <= 0:
            raise ValueError("lease, poll and sweep intervals must be positive")
        if self.stream_save_seconds <= 0 or self.cancel_wait_seconds <= 0:
            raise ValueError("the stream save interval and the cancel wait must be positive")

    @classmethod
    def from_env(cls, env: Mapping[str, str], providers: Iterable[str] = ()) -> JobSettings:
        limits = {name: env_int(provider_limit_variable(name), 0, env) for name in providers}
        return cls(
            workers=env_int("KLIK_GENERATION_WORKERS", 4, env),
            max_in_flight=env_int("KLIK_GENERATION_MAX_IN_FLIGHT", 2000, env),
            provider_in_flight={name: limit for name, limit in limits.items() if limit},
            per_user=env_int("KLIK_JOBS_PER_USER", 16, env),
            lease_seconds=env_float("KLIK_JOB_LEASE_SECONDS", 30.0, env),
            poll_seconds=env_float("KLIK_JOB_POLL_SECONDS", 2.0, env),
            max_queue_seconds=env_float("KLIK_JOB_MAX_QUEUE_SECONDS", 3600.0, env),
            pending_timeout_seconds=env_float("KLIK_JOB_PENDING_TIMEOUT_SECONDS", 60.0, env),
            sweep_seconds=env_float("KLIK_JOB_SWEEP_SECONDS", 5.0, env),
            stream_save_seconds=env_float("KLIK_JOB_STREAM_SAVE_SECONDS", 0.25, env),
            cancel_wait_seconds=env_float("KLIK_JOB_CANCEL_WAIT_SECONDS", 2.0, env),
        )


@dataclass(frozen=True)
class GenerationSettings:
    catalogue: Catalogue
    prices: Prices = field(default_factory=Prices)
    policy: ProviderPolicy = field(default_factory=ProviderPolicy)
    deadlines: Mapping[Kind, float] = field(default_factory=lambda: dict(DEFAULT_DEADLINES))
    jobs: JobSettings = field(default_factory=JobSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GenerationSettings:
        env = os.environ if env is None else env
        catalogue = catalogue_from_env(env)
        try:
            prices = Prices(
                image=env_int("KLIK_PRICE_IMAGE", 5, env),
                video_second=env_int("KLIK_PRICE_VIDEO_SECOND", 1, env),
                million_tokens=env_int("KLIK_PRICE_MILLION_TOKENS", 1_000, env),
                minimum_text=env_int("KLIK_PRICE_TEXT_MINIMUM", 1, env),
                motion_clip=env_int("KLIK_PRICE_MOTION_CLIP", 20, env),
            )
            policy = ProviderPolicy(
                retry=RetryPolicy(max_attempts=env_int("KLIK_PROVIDER_MAX_ATTEMPTS", 4, env)),
                breaker=BreakerPolicy(
                    failure_threshold=env_int("KLIK_BREAKER_FAILURES", 5, env),
                    cooldown_seconds=env_float("KLIK_BREAKER_COOLDOWN_SECONDS", 30.0, env),
                ),
                timeouts=Timeouts(read=env_float("KLIK_PROVIDER_TIMEOUT_SECONDS", 60.0, env)),
                polling=PollSchedule(
                    initial_seconds=env_float("KLIK_PROVIDER_POLL_INITIAL_SECONDS", 1.0, env),
                    max_seconds=env_float("KLIK_PROVIDER_POLL_MAX_SECONDS", 10.0, env),
                ),
                listing_ttl_seconds=env_float("KLIK_PROVIDER_CATALOGUE_TTL_SECONDS", 600.0, env),
                max_connections=env_int(
                    "KLIK_PROVIDER_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, env
                ),
                heygen_webhook_secret=env_str("KLIK_HEYGEN_WEBHOOK_SECRET", "", env),
                leonardo_webhook_key=env_str("KLIK_LEONARDO_WEBHOOK_KEY", "", env),
            )
            jobs = JobSettings.from_env(env, (p.name for p in catalogue.providers))
        except ValueError as error:  # a price or bound out of range
            raise ConfigError(str(error)) from None
        deadlines = {
            Kind.TEXT: env_float("KLIK_TEXT_DEADLINE_SECONDS", DEFAULT_DEADLINES[Kind.TEXT], env),
            Kind.IMAGE: env_float(
                "KLIK_IMAGE_DEADLINE_SECONDS", DEFAULT_DEADLINES[Kind.IMAGE], env
            ),
            Kind.AVATAR_VIDEO: env_float(
                "KLIK_VIDEO_DEADLINE_SECONDS", DEFAULT_DEADLINES[Kind.AVATAR_VIDEO], env
            ),
            Kind.IMAGE_TO_VIDEO: env_float(
                "KLIK_MOTION_DEADLINE_SECONDS", DEFAULT_DEADLINES[Kind.IMAGE_TO_VIDEO], env
            ),
        }
        deadlines[Kind.CHAT] = deadlines[Kind.TEXT]
        return cls(catalogue, prices, policy, deadlines, jobs)


def provider_limit_variable(name: str) -> str:
    """`KLIK_PROVIDER_<NAME>_MAX_IN_FLIGHT`: the jobs of provider `name` one replica
    runs at once (letters and digits upper-cased, anything else `_`)."""
    upper = "".join(c.upper() if c.isalnum() else "_" for c in name)
    return f"KLIK_PROVIDER_{upper}_MAX_IN_FLIGHT"


# Where `python -m sandbox` listens unless KLIK_SANDBOX_PORT says otherwise
# (sandbox/settings.py DEFAULT_PORT).
SANDBOX_PORT = 8090


def sandbox_url(env: Mapping[str, str]) -> str:
    """Where the sandbox serves every provider without a real key: KLIK_SANDBOX_URL,
    else the sandbox on this machine (at KLIK_SANDBOX_PORT)."""
    port = env_int("KLIK_SANDBOX_PORT", SANDBOX_PORT, env)
    return env_str("KLIK_SANDBOX_URL", f"http://127.0.0.1:{port}", env)


def catalogue_from_env(env: Mapping[str, str]) -> Catalogue:
    openai_name = env_str("KLIK_OPENAI_NAME", "openai", env)
    if openai_name in (SANDBOX, SANDBOX_ANTHROPIC):
        raise ConfigError(
            f"KLIK_OPENAI_NAME may not be {openai_name!r}: that name is the sandbox's"
        )
    real: list[Provider] = []
    openai_key = env_str("KLIK_OPENAI_API_KEY", "", env)
    openai_url = env_str("KLIK_OPENAI_BASE_URL", "", env)
    if openai_key or openai_url:
        endpoint = Endpoint(openai_url or OPENAI_URL, openai_key)
        real.append(Provider(openai_name, {Family.OPENAI: endpoint}, OPENAI_MODELS))
    if llm := env_str("KLIK_LLM_PROVIDERS", "", env):
        real.extend(parse_llm_providers(llm))
    if leonardo_key := env_str("KLIK_LEONARDO_API_KEY", "", env):
        endpoint = Endpoint(env_str("KLIK_LEONARDO_BASE_URL", LEONARDO_URL, env), leonardo_key)
        real.append(Provider("leonardo", {Family.LEONARDO: endpoint}, LEONARDO_MODELS))
    if heygen_key := env_str("KLIK_HEYGEN_API_KEY", "", env):
        endpoint = Endpoint(env_str("KLIK_HEYGEN_BASE_URL", HEYGEN_URL, env), heygen_key)
        real.append(Provider("heygen", {Family.HEYGEN: endpoint}, HEYGEN_MODELS))
    providers = list(real)
    served = {kind for provider in real for kind in provider.kinds}
    if missing := [kind for kind in Kind if kind not in served]:
        providers.append(sandbox_provider(sandbox_url(env), missing))
        if Kind.CHAT in missing:
            providers.append(sandbox_anthropic(sandbox_url(env)))
    if models := env_str("KLIK_MODELS", "", env):
        known = {p.name for p in providers} | {openai_name, "leonardo", "heygen"}
        providers = _with_models(providers, parse_models(models), known)
    if configured := env_str("KLIK_LLM_ALIASES", "", env):
        aliases = parse_aliases(configured)
    else:
        aliases = _sandbox_alias(Catalogue(tuple(providers)))
    return check(Catalogue(tuple(providers), aliases))


def _sandbox_alias(catalogue: Catalogue) -> tuple[Alias, ...]:
    """`default-chat` over the sandbox's two LLM shapes, where both serve text."""
    targets = tuple(
        (name, model)
        for name, model in SANDBOX_ALIAS_TARGETS
        if (provider := catalogue.provider(name))
        and any(m.id == model and m.serves(Kind.CHAT) for m in provider.models)
    )
    return (Alias(SANDBOX_ALIAS, targets),) if len(targets) > 1 else ()


def _with_models(
    providers: list[Provider], models: Mapping[str, tuple[Model, ...]], known: set[str]
) -> list[Provider]:
    """Replace the models of each provider KLIK_MODELS names. A known provider that is
    not configured (no key) is skipped; an unknown name is a mistake."""
    unknown = set(models) - known - {SANDBOX, SANDBOX_ANTHROPIC}
    if unknown:
        raise ConfigError(f"KLIK_MODELS names unknown providers: {sorted(unknown)}")
    return [
        replace(provider, models=models[provider.name]) if provider.name in models else provider
        for provider in providers
    ]
