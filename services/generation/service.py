"""What makes the generation service: its servicers, its migrations, its consumers,
and its background loops (background.py: the job workers, the settler of holds and
the reaper of jobs whose creation was interrupted), all over one `Runtime` per
replica."""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.assets import AssetSettings, AssetStore, open_asset_store
from kit.server import Resources, ServiceParts, ServiceSpec
from klik.generation.v1 import generation_pb2
from services.generation import api, background, events
from services.generation.domain import Job
from services.generation.jobs import Jobs
from services.generation.providers.registry import Providers
from services.generation.queue import JobQueue
from services.generation.runner import Runner
from services.generation.settings import GenerationSettings
from services.generation.settlement import Settler
from services.generation.streams import JobStreams
from services.generation.wallet_client import Holds
from services.generation.worker import Workers

MIGRATIONS = Path(__file__).parent / "migrations"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    """One replica's parts, shared by its servicer and its background work."""

    settings: GenerationSettings
    providers: Providers
    jobs: Jobs
    settler: Settler
    workers: Workers
    assets: AssetStore
    streams: JobStreams

    @classmethod
    def build(
        cls,
        resources: Resources,
        settings: GenerationSettings,
        providers: Providers | None,
        asset_settings: AssetSettings,
    ) -> Runtime:
        if providers is None:
            providers = Providers(settings.catalogue, settings.policy)
        assets = open_asset_store(asset_settings)
        # Closed once drained, in reverse order: the asset store, then the HTTP client.
        resources.on_close(providers.aclose)
        resources.on_close(assets.close)
        queue = JobQueue(resources.uow, settings.jobs.lease_seconds)
        holds = Holds(resources.channel("wallet"))
        settler = Settler(resources.uow, settings.jobs, holds)
        streams = JobStreams(resources)

        async def stop_reply(job_id: str) -> None:
            workers.cancel_reply(job_id)  # here at once, elsewhere over NATS
            await streams.request_cancel(job_id)

        async def changed(job: Job) -> None:
            await streams.publish(job.id, generation_pb2.WatchJobResponse(job=api.job_message(job)))

        jobs = Jobs(
            resources.uow,
            settings,
            providers,
            holds,
            settler,
            queued=queue.ring,
            # Bound late: the workers need the jobs first.
            cancelled=lambda job_id: workers.stop(job_id),
            stop_reply=stop_reply,
            changed=changed,
            drop_files=lambda job: events.remove_outputs(assets, job),
        )
        runner = Runner(settings, providers, assets, asset_settings)
        workers = Workers(jobs, queue, runner, settings.jobs, streams)
        jobs.handoff = workers

        async def hand_over() -> None:
            # Run once drained, when the workers are stopped: a rolling deploy then
            # costs the jobs in flight no lease time.
            if handed := await queue.release(workers.replica):
                log.info("jobs handed back to the queue: %d", handed)

        resources.on_close(hand_over)
        return cls(settings, providers, jobs, settler, workers, assets, streams)

    def background(self) -> Sequence[Coroutine[Any, Any, None]]:
        return background.loops(self.workers, self.settler, self.settings.jobs)


def make_spec(
    settings: GenerationSettings | None = None,
    providers: Providers | None = None,
    assets: AssetSettings | None = None,
    consumer_prefix: str = "generation",
) -> ServiceSpec:
    """The generation spec; its settings (and where results are stored) come from
    the environment when the server is built unless given (tests give them, and may
    give the providers too, and their own durable consumer names, `consumer_prefix`)."""

    def build(resources: Resources) -> ServiceParts:
        runtime = Runtime.build(
            resources,
            settings or GenerationSettings.from_env(),
            providers,
            assets or AssetSettings.from_env(),
        )
        return ServiceParts(
            servicers=lambda server: api.register(server, resources, runtime),
            consumers=lambda: events.consumers(resources, runtime.assets, consumer_prefix),
            background=runtime.background,
        )

    return ServiceSpec(name="generation", build=build, migrations=MIGRATIONS)


SPEC = make_spec()
