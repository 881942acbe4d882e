"""Upload grants and magic bytes (kit.assets.uploads): what the gateway accepts."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from kit.assets.uploads import (
    ExpiredUploadUrl,
    InvalidUploadUrl,
    UploadGrant,
    UploadSettings,
    sniff,
    upload_key,
    verified_grant,
)
from kit.config import ConfigError

SETTINGS = UploadSettings(secret="s3cret", base_url="https://klik.example/v1/uploads")
GRANT = UploadGrant("0f8fad5b-d9cb-469f-a165-70867728950e", "image/png", 1234, 2_000_000_000)


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00\x80\x00", "image/gif"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b"<!doctype html><html>", None),
        (b"\x89PNG", None),
        (b"", None),
    ],
)
def test_sniff_knows_the_four_types_by_their_magic_bytes(head: bytes, expected: str) -> None:
    assert sniff(head) == expected


def test_a_signed_url_verifies_and_carries_its_grant() -> None:
    url = GRANT.url(SETTINGS)
    assert url.startswith(f"https://klik.example/v1/uploads/{GRANT.upload_id}/content?")
    params = query(url)
    assert verified_grant("s3cret", GRANT.upload_id, params, now=1_900_000_000) == GRANT
    assert upload_key(GRANT.upload_id, "image/png") == f"uploads/{GRANT.upload_id}.png"


@pytest.mark.parametrize(
    "change",
    [
        {"size": "99999"},
        {"type": "image/gif"},
        {"expires": "2000000001"},
        {"sig": "0" * 64},
        {"sig": ""},
    ],
)
def test_any_change_to_a_signed_url_breaks_it(change: dict[str, str]) -> None:
    params = query(GRANT.url(SETTINGS))
    with pytest.raises(InvalidUploadUrl):
        verified_grant("s3cret", GRANT.upload_id, {**params, **change}, now=1_900_000_000)


def test_another_upload_id_another_secret_or_a_missing_field_is_invalid() -> None:
    params = query(GRANT.url(SETTINGS))
    for secret, upload_id, given in (
        ("s3cret", "another", params),
        ("other", GRANT.upload_id, params),
        ("", GRANT.upload_id, params),
        ("s3cret", GRANT.upload_id, {k: v for k, v in params.items() if k != "size"}),
    ):
        with pytest.raises(InvalidUploadUrl):
            verified_grant(secret, upload_id, given, now=1_900_000_000)


def test_a_url_is_expired_from_its_expiry_on() -> None:
    params = query(GRANT.url(SETTINGS))
    with pytest.raises(ExpiredUploadUrl):
        verified_grant("s3cret", GRANT.upload_id, params, now=GRANT.expires)


def test_settings_from_the_environment() -> None:
    settings = UploadSettings.from_env({"KLIK_GATEWAY_PORT": "9999"})
    assert (settings.enabled, settings.max_bytes) == (False, 10 * 1024 * 1024)
    assert settings.base_url == "http://127.0.0.1:9999/v1/uploads"
    assert UploadSettings.from_env({"KLIK_UPLOAD_SECRET": "x"}).enabled
    for bad in (
        {"KLIK_UPLOAD_MAX_BYTES": "0"},
        {"KLIK_UPLOAD_URL_TTL_SECONDS": "0"},
        {"KLIK_UPLOAD_BASE_URL": "ftp://x"},
    ):
        with pytest.raises(ConfigError):
            UploadSettings.from_env(bad)
    assert "s3cret" not in repr(SETTINGS)
