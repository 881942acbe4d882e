"""Run a klik gRPC service: the same lifecycle for every service.

start   bind the port, answer health NOT_SERVING, refuse other calls (UNAVAILABLE);
        the `liveness` health name says SERVING from here until drain
ready   once the database is migrated and the event bus is connected: start the
        revocation feed (kit.revocations), the outbox relay, the event consumers and
        the service's background tasks; health SERVING for every service name
drain   on SIGTERM/SIGINT: health NOT_SERVING, refuse new calls, let in-flight calls
        finish within `KLIK_GRACE_SECONDS`, cancel background tasks, stop consumers
        and relay, close connections

Health stays answerable throughout, so orchestrators see each phase."""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from nats.aio.client import Client as Nats
from nats.js import JetStreamContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kit import bus, db, rpc
from kit.callers import Callers
from kit.config import ConfigError, ServiceSettings, env_str
from kit.consumer import EventConsumer
from kit.gate import CallGate, Phase
from kit.identity import ServiceIdentity, load_identity, load_trust
from kit.interceptors import ServerInterceptor
from kit.logs import setup_logging
from kit.metrics import serve_metrics
from kit.outbox import OutboxRelay
from kit.periodic import cancel_and_wait
from kit.retry import retry_until_ready
from kit.revocations import RevocationFeed
from kit.tokens import TokenVerifier, grpc_jwks_source

log = logging.getLogger(__name__)

# Health name that only says the process is alive and its event loop answers: what a
# liveness probe asks, so an outage of NATS or the database (which turns the overall
# status NOT_SERVING) takes replicas out of rotation without restarting them.
LIVENESS = "liveness"

SERVER_OPTIONS = (
    # Without this gRPC sets SO_REUSEPORT and a second copy of a service would
    # silently share the port with the first instead of failing to start.
    ("grpc.so_reuseport", 0),
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.max_receive_message_length", 8 * 1024 * 1024),
    # Clients re-resolve `dns:///` targets only when a connection closes: cycling
    # connections lets them discover replicas added by a scale-up.
    ("grpc.max_connection_age_ms", 5 * 60_000),
    ("grpc.max_connection_age_grace_ms", 30_000),
)


@dataclass
class Resources:
    """What a service's servicers and consumers share. `nats`, `js` and `relay` are set
    when the service becomes ready; no RPC is admitted before that."""

    settings: ServiceSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    identity: ServiceIdentity | None
    callers: Callers = field(init=False)
    nats: Nats | None = None
    js: JetStreamContext | None = None
    relay: OutboxRelay | None = None
    channels: dict[str, grpc.aio.Channel] = field(default_factory=dict)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @functools.cached_property
    def uow(self) -> db.UnitOfWork:
        """Transactions on this service's database whose commits wake the relay."""
        return db.UnitOfWork(self.sessions, self.events_committed)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Have `closer` run once the service has drained (no call in flight any
        more): for what a service owns beyond the kit's connections, such as an HTTP
        client its servicers share. Closers run in reverse order of registration."""
        self.closers.append(closer)

    def channel(self, service: str) -> grpc.aio.Channel:
        """The long-lived channel to another klik service; calls without their own
        `authorization` present this service's identity."""
        if service not in self.channels:
            identity = self.identity
            bearer = None if identity is None else (lambda: identity.token(service))
            self.channels[service] = rpc.channel(self.settings.peers[service], bearer=bearer)
        return self.channels[service]

    async def close(self) -> None:
        while self.closers:
            await self.closers.pop()()
        for channel in self.channels.values():
            await channel.close()
        self.channels.clear()

    def events_committed(self) -> None:
        """Call after committing a transaction that added outbox events: the relay
        publishes them now instead of at its next poll."""
        if self.relay is not None:
            self.relay.notify()


@dataclass(frozen=True)
class ServiceParts:
    """What a service is made of: built once per Server by `ServiceSpec.build`, so the
    servicers, consumers and background work share the objects built there (a ledger,
    a job runtime) without looking them up again."""

    # Adds the servicers built over those objects to the server; returns the full
    # names of the gRPC services added (for health and reflection).
    servicers: Callable[[grpc.aio.Server], Sequence[str]]
    # Called once, when the service becomes ready (database migrated, bus connected:
    # `resources.js` and `resources.relay` are set), never before.
    consumers: Callable[[], Sequence[EventConsumer]] = field(default=lambda: ())
    # Long-running jobs of the service (e.g. a sweeper), made once it is ready and
    # cancelled when it drains; each should loop until cancelled.
    background: Callable[[], Sequence[Coroutine[Any, Any, None]]] = field(default=lambda: ())
    # Run once the database is migrated, before the bus is connected or any RPC is
    # admitted: checks and upgrades of the service's own data that need its secrets
    # (auth seals its keys at rest). Not retried: if it raises, the service does not
    # become ready, logs why, and `Server.failure` holds the error (`run` exits).
    prepare: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class ServiceSpec:
    """What makes a service this service."""

    name: str
    # Builds the service's parts over the server's resources, once per Server (when
    # it is constructed, before it binds; nothing there may need the bus yet).
    build: Callable[[Resources], ServiceParts]
    migrations: Path


class Server:
    def __init__(self, spec: ServiceSpec, settings: ServiceSettings) -> None:
        self.spec = spec
        self.settings = settings
        self.gate = CallGate()
        self.health = health.aio.HealthServicer()
        engine = db.make_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        self.resources = Resources(
            settings, engine, db.session_factory(engine), _identity(settings)
        )
        self.resources.callers = _callers(self.resources)
        self.grpc = grpc.aio.server(
            interceptors=[ServerInterceptor(self.gate)], options=SERVER_OPTIONS
        )
        self.parts = spec.build(self.resources)
        self.service_names = tuple(self.parts.servicers(self.grpc))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        reflection.enable_server_reflection(
            (*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), self.grpc
        )
        self.port = 0
        self._tasks: list[asyncio.Task[Any]] = []
        self._consumers: Sequence[EventConsumer] = ()
        self._revocations: RevocationFeed | None = None
        self._background: list[asyncio.Task[None]] = []
        self._bring_up: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        # Set when bring-up failed for good (ServiceParts.prepare raised).
        self.failure: BaseException | None = None
        self.failed = asyncio.Event()

    async def start(self) -> None:
        """Bind and serve health right away; become ready in the background."""
        address = f"{self.settings.host}:{self.settings.port}"
        self.port = self.grpc.add_insecure_port(address)
        if not self.port:
            raise RuntimeError(f"cannot listen on {address}: is another copy running?")
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.health.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        await self.grpc.start()
        log.info("listening", extra={"address": f"{self.settings.host}:{self.port}"})
        self._bring_up = asyncio.create_task(self._become_ready(), name="bring-up")

    async def _become_ready(self) -> None:
        await retry_until_ready(
            "database", lambda: db.migrate(self.resources.engine, self.spec.migrations)
        )
        if self.parts.prepare is not None:
            try:
                await self.parts.prepare()
            except Exception as error:
                log.critical("cannot start", extra={"error": str(error)})
                self.failure = error
                self.failed.set()
                return
        nc = await retry_until_ready("event bus", self._connect_bus)
        js = nc.jetstream()
        await retry_until_ready("event streams", lambda: bus.ensure_streams(js))
        # Before serving: a deleted user's token must not pass here while the feed
        # catches up (kit.revocations).
        revocations = RevocationFeed(
            js, self.resources.callers, token_lifetime=token_lifetime(self.settings)
        )
        await retry_until_ready("revocation feed", revocations.start)
        self._revocations = revocations
        relay = OutboxRelay(self.resources.engine, js)
        self.resources.nats, self.resources.js, self.resources.relay = nc, js, relay
        self._tasks.append(asyncio.create_task(relay.run(), name="outbox-relay"))
        self._consumers = self.parts.consumers()
        for consumer in self._consumers:
            self._tasks.append(asyncio.create_task(consumer.run(), name=consumer.consumer))
        for job in self.parts.background():
            self._background.append(
                asyncio.create_task(job, name=getattr(job, "__qualname__", "background"))
            )
        self.gate.phase = Phase.SERVING
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        self.ready.set()
        log.info("serving", extra={"services": list(self.service_names)})

    async def _connect_bus(self) -> Nats:
        async def down() -> None:
            if self.gate.phase is Phase.SERVING:
                log.warning("event bus disconnected")
                await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)

        async def up() -> None:
            if self.gate.phase is Phase.SERVING:
                log.info("event bus reconnected")
                await self._set_health(health_pb2.HealthCheckResponse.SERVING)

        return await bus.connect(
            self.settings.nats_url,
            name=self.settings.name,
            on_disconnect=down,
            on_reconnect=up,
        )

    async def _set_health(self, status: int) -> None:
        for name in ("", *self.service_names):
            await self.health.set(name, status)

    async def shutdown(self) -> None:
        """Drain: stop taking calls, finish the in-flight ones within the grace
        period, then release every resource."""
        if self.gate.phase is Phase.DRAINING:
            return
        self.gate.phase = Phase.DRAINING
        await self.health.enter_graceful_shutdown()
        log.info("draining", extra={"in_flight": self.gate.in_flight})
        grace = self.settings.grace_seconds
        loop = asyncio.get_running_loop()
        until = loop.time() + grace
        if not await self.gate.wait_idle(grace):
            log.warning("grace period over", extra={"in_flight": self.gate.in_flight})
        if self._bring_up is not None and not self._bring_up.done():
            self._bring_up.cancel()
        stuck = await cancel_and_wait(self._background, max(until - loop.time(), 5.0))
        if stuck:
            log.error("background jobs did not stop", extra={"jobs": stuck})
        for consumer in self._consumers:
            consumer.stop()
        if self.resources.relay is not None:
            self.resources.relay.stop()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=max(until - loop.time(), 1.0))
            for task in pending:
                task.cancel()
        await self.grpc.stop(max(until - loop.time(), 0.0))
        await self.resources.close()
        if self._revocations is not None:
            await self._revocations.stop()
        if self.resources.nats is not None and not self.resources.nats.is_closed:
            await self.resources.nats.close()
        await self.resources.engine.dispose()
        log.info("stopped")


def _identity(settings: ServiceSettings) -> ServiceIdentity | None:
    identity = load_identity(settings.service_keys_dir, settings.name)
    if identity is None:
        log.warning(
            "no service identity key: calls this service makes to internal RPCs will fail",
            extra={"expected": str(settings.service_keys_dir / f"{settings.name}.key")},
        )
    return identity


def _callers(resources: Resources) -> Callers:
    """How this service checks its callers: user tokens against auth's JWKS (fetched
    on the first token it sees), service tokens against the trusted public keys."""
    settings = resources.settings

    async def jwks() -> Sequence[Mapping[str, str]]:
        return await grpc_jwks_source(resources.channel("auth"))()

    verifier = TokenVerifier(
        jwks,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        leeway=settings.token_leeway_seconds,
    )
    return Callers(settings.name, verifier, load_trust(settings.service_keys_dir))


def token_lifetime(settings: ServiceSettings) -> float:
    """How long after it is issued an access token can still pass verification."""
    return settings.access_token_ttl_seconds + settings.token_leeway_seconds


async def run(spec: ServiceSpec, settings: ServiceSettings) -> None:
    """Serve until SIGTERM or SIGINT, then drain."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    serve_metrics(settings.host, settings.metrics_port)
    server = Server(spec, settings)
    await server.start()
    stopping = asyncio.create_task(stop.wait())
    failing = asyncio.create_task(server.failed.wait())
    await asyncio.wait([stopping, failing], return_when=asyncio.FIRST_COMPLETED)
    for waiter in (stopping, failing):
        waiter.cancel()
    await server.shutdown()
    if server.failure is not None:
        raise SystemExit(f"{spec.name}: cannot start: {server.failure}")


def event_loop_factory(
    env: Mapping[str, str] | None = None,
) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop a service runs on, `KLIK_EVENT_LOOP`: `uvloop` (the default)
    or `asyncio` (the standard library's; None here). uvloop makes every socket wait
    cheaper, and a service does one per database statement (psycopg's waits)."""
    choice = env_str("KLIK_EVENT_LOOP", "uvloop", env).lower()
    if choice == "asyncio":
        return None
    if choice != "uvloop":
        raise ConfigError(f"KLIK_EVENT_LOOP must be uvloop or asyncio, not {choice!r}")
    import uvloop  # only where chosen

    return uvloop.new_event_loop


def main(spec: ServiceSpec) -> None:
    """Entry point of `python -m services.<name>`."""
    settings = ServiceSettings.from_env(spec.name)
    setup_logging(spec.name, settings.log_level)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(run(spec, settings))
