"""Asset keys: what `asset_key` makes, and what `check_key` lets through."""

from __future__ import annotations

import uuid

import pytest

from kit.assets import InvalidAssetKey, asset_key, check_key
from kit.assets.keys import guess_mime_type

JOB = "0b7f3c1e-4d6a-4f4e-9a51-2f0c8d1e7a90"


@pytest.mark.parametrize(
    ("mime_type", "extension"),
    [
        ("image/png", ".png"),
        ("image/jpeg", ".jpg"),
        ("image/webp", ".webp"),
        ("video/mp4", ".mp4"),
        ("video/webm", ".webm"),
        ("text/plain", ".txt"),
        ("application/x-unknown-thing", ".bin"),
    ],
)
def test_asset_key_is_job_index_and_extension(mime_type: str, extension: str) -> None:
    assert asset_key(JOB, 3, mime_type) == f"{JOB}/3{extension}"


def test_asset_key_is_deterministic_so_a_resumed_job_overwrites() -> None:
    assert asset_key(JOB, 0, "image/png") == asset_key(JOB, 0, "image/png")
    assert asset_key(JOB, 0, "image/png") != asset_key(JOB, 1, "image/png")


def test_asset_key_refuses_a_job_id_that_would_escape() -> None:
    with pytest.raises(InvalidAssetKey):
        asset_key("../../etc", 0, "image/png")


@pytest.mark.parametrize(
    "key",
    [f"{JOB}/0.png", "a", "a/b/c/d.mp4", "A-z_0.9", f"{uuid.uuid4().hex}/12.webm"],
)
def test_check_key_accepts_store_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize(
    "key",
    [
        "",
        ".",
        "..",
        "../x",
        "a/../b",
        "a/..",
        "a..b",
        "/abs",
        "a/",
        "a//b",
        ".hidden",
        "a/.hidden",
        "a\\b",
        "a b",
        "a/b/c/d/e",  # deeper than any key asset_key makes
        "x" * 129,
        "é.png",
        "a\x00b",
        "a\nb",
    ],
)
def test_check_key_rejects_anything_else(key: str) -> None:
    with pytest.raises(InvalidAssetKey):
        check_key(key)


def test_mime_type_is_guessed_from_the_extension() -> None:
    assert guess_mime_type(f"{JOB}/0.png") == "image/png"
    assert guess_mime_type(f"{JOB}/0.mp4") == "video/mp4"
    assert guess_mime_type(f"{JOB}/0.bin") == "application/octet-stream"
