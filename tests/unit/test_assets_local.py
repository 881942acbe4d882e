"""The local-directory store's own guarantees (the contract both stores share is in
tests/integration/test_asset_store_s3.py): files land under the root and only
there, writes are atomic, and a failed write leaves the old file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kit.assets import InvalidAssetKey
from kit.assets.local import CHUNK, LocalAssetStore

KEY = "3f2b9c1e-0000-4000-8000-000000000001/0.png"


async def read_all(
    store: LocalAssetStore, key: str, start: int = 0, end: int | None = None
) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, start, end)])


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(".put-")]


async def test_put_writes_the_file_under_the_root_readable_by_others(tmp_path: Path) -> None:
    store = LocalAssetStore(tmp_path / "assets")
    info = await store.put(KEY, b"\x89PNG data", "image/png")
    path = tmp_path / "assets" / KEY
    assert path.read_bytes() == b"\x89PNG data"
    assert info.size == 9
    # The gateway may run as another user: the file must not stay mkstemp's 0600.
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert leftovers(tmp_path) == []


async def test_stat_reports_size_guessed_type_and_the_etag_put_returned(tmp_path: Path) -> None:
    store = LocalAssetStore(tmp_path)
    put = await store.put(KEY, b"12345", "image/png")
    info = await store.stat(KEY)
    assert info == put


async def test_ranges_and_chunks(tmp_path: Path) -> None:
    store = LocalAssetStore(tmp_path)
    data = os.urandom(2 * CHUNK + 1)
    await store.put(KEY, data, "image/png")
    chunks = [chunk async for chunk in store.read(KEY)]
    assert [len(c) for c in chunks] == [CHUNK, CHUNK, 1]
    assert await read_all(store, KEY, CHUNK - 1, CHUNK + 1) == data[CHUNK - 1 : CHUNK + 1]
    assert await read_all(store, KEY, 2 * CHUNK) == data[2 * CHUNK :]
    assert await read_all(store, KEY, 7, 7) == b""


async def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalAssetStore(tmp_path)
    await store.put(KEY, b"old", "image/png")

    def disk_full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("kit.assets.local.os.replace", disk_full)
    with pytest.raises(OSError, match="No space"):
        await store.put(KEY, b"new", "image/png")
    monkeypatch.undo()
    assert await read_all(store, KEY) == b"old"
    assert leftovers(tmp_path) == []


async def test_an_open_reader_keeps_the_old_file_across_an_overwrite(tmp_path: Path) -> None:
    store = LocalAssetStore(tmp_path)
    await store.put(KEY, b"a" * (2 * CHUNK), "image/png")
    reader = store.read(KEY)
    first = await anext(reader)
    await store.put(KEY, b"b" * (2 * CHUNK), "image/png")
    assert first + b"".join([c async for c in reader]) == b"a" * (2 * CHUNK)
    assert leftovers(tmp_path) == []


async def test_delete_of_a_missing_file_and_a_prefix_directory(tmp_path: Path) -> None:
    store = LocalAssetStore(tmp_path)
    await store.delete(KEY)
    await store.put(KEY, b"x", "image/png")
    prefix = KEY.split("/")[0]
    assert (tmp_path / prefix).is_dir()
    assert await store.stat(prefix) is None, "a directory is not an asset"
    assert await store.stat(f"{KEY}/deeper.png") is None, "a file is not a directory"
    await store.delete(KEY)
    assert not (tmp_path / KEY).exists()


@pytest.mark.parametrize("key", ["../outside.png", "a/../../outside.png", "/tmp/outside.png"])
async def test_nothing_is_written_or_read_outside_the_root(tmp_path: Path, key: str) -> None:
    root = tmp_path / "root"
    store = LocalAssetStore(root)
    (tmp_path / "outside.png").write_bytes(b"secret")
    with pytest.raises(InvalidAssetKey):
        await store.put(key, b"x", "image/png")
    with pytest.raises(InvalidAssetKey):
        await read_all(store, key)
    with pytest.raises(InvalidAssetKey):
        await store.delete(key)
    assert (tmp_path / "outside.png").read_bytes() == b"secret"
    assert not root.exists() or list(root.rglob("*")) == []
