"""Result files are streamed from the provider into the asset store as they arrive,
never held whole in memory (issue 17, item 8); a download that breaks off stores
nothing. The runner against the sandbox over real HTTP and a real local store."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable, AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from kit.assets import AssetInfo, AssetSettings
from kit.assets.local import LocalAssetStore
from kit.clock import utc_now
from services.generation.domain import Job, Kind, Options, Status, Usage
from services.generation.providers.registry import Providers
from services.generation.providers.values import MediaResult
from services.generation.runner import JobFailed, Runner
from services.generation.settings import GenerationSettings, JobSettings, catalogue_from_env
from tests.generation.conftest import POLICY, SandboxServer

PAD = 3_000_000  # a multi-MB result


class RecordingStore(LocalAssetStore):
    """The local store, counting the chunks each streamed put was given."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.chunks: list[int] = []

    async def put(self, key: str, data: bytes, mime_type: str) -> AssetInfo:
        raise AssertionError("a result file is streamed, never put whole")

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        mime_type: str,
        *,
        size: int | None = None,
        exclusive: bool = False,
    ) -> AssetInfo:
        async def counted() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                self.chunks.append(len(chunk))
                yield chunk

        return await super().put_stream(key, counted(), mime_type, size=size, exclusive=exclusive)


def a_job() -> Job:
    now = utc_now()
    return Job(
        id="00000000-0000-4000-8000-00000000f11e",
        seq=1,
        user_id="u",
        kind=Kind.IMAGE,
        status=Status.RUNNING,
        prompt="p",
        provider="sandbox",
        model="sandbox-image",
        options=Options(),
        estimate=5,
        cost_credits=5,
        hold_id="h",
        hold_expires_at=now + timedelta(hours=1),
        created_at=now,
        updated_at=now,
        deadline_at=now + timedelta(seconds=30),
    )


@pytest.fixture
async def runner(sandbox: SandboxServer, tmp_path: Path) -> AsyncIterator[Runner]:
    settings = GenerationSettings(
        catalogue_from_env({"KLIK_SANDBOX_URL": sandbox.url}),
        policy=POLICY,
        jobs=dataclasses.replace(JobSettings(), media_max_bytes=10_000_000),
    )
    providers = Providers(settings.catalogue, settings.policy)
    assets = AssetSettings.from_env({"KLIK_ASSET_DIR": str(tmp_path / "assets")})
    yield Runner(settings, providers, RecordingStore(tmp_path / "assets"), assets)
    await providers.aclose()


def image(sandbox: SandboxServer) -> MediaResult:
    url = f"{sandbox.url}/files/images/{'ab' * 16}/512x512.png"
    return MediaResult("sandbox", "g", (url,), "image/png", Usage(images=1))


async def test_a_large_result_reaches_the_store_in_chunks(
    runner: Runner, sandbox: SandboxServer, tmp_path: Path
) -> None:
    await sandbox.fault(f"pad={PAD}", "/files/")
    result = await runner._store(a_job(), image(sandbox))
    store = runner.assets
    assert isinstance(store, RecordingStore)
    total = sum(store.chunks)
    assert total > PAD
    assert len(store.chunks) >= 10, "streamed as it arrived"
    assert max(store.chunks) < total // 10, "never the whole file at once"
    stored = list((tmp_path / "assets").rglob("*.png"))
    assert len(stored) == 1 and stored[0].stat().st_size == total
    assert result.asset_url.endswith(stored[0].name)


async def test_a_download_that_breaks_off_stores_nothing(
    runner: Runner, sandbox: SandboxServer, tmp_path: Path
) -> None:
    # Every attempt is cut after 1 MB of the file.
    await sandbox.fault(f"pad={PAD},drop=1000000", "/files/")
    with pytest.raises(JobFailed) as failed:
        await runner._store(a_job(), image(sandbox))
    assert "cannot fetch the result file" in failed.value.message
    store = runner.assets
    assert isinstance(store, RecordingStore)
    assert sum(store.chunks) >= 1_000_000, "bytes had arrived before the cut"
    assert [p for p in (tmp_path / "assets").rglob("*") if p.is_file()] == [], (
        "no partial file, no temporary file"
    )
    assert len(await sandbox.requests("/files/")) == 3, "tried three times"
