"""AssetSettings.from_env: defaults, the S3 variables, and values it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from kit.assets import AssetSettings, open_asset_store
from kit.assets.local import LocalAssetStore
from kit.assets.s3 import S3AssetStore
from kit.config import ConfigError

S3 = {"KLIK_ASSET_STORE": "s3", "KLIK_S3_BUCKET": "media"}


def test_defaults_are_a_local_directory_under_var_served_by_the_gateway(tmp_path: Path) -> None:
    settings = AssetSettings.from_env({"KLIK_VAR_DIR": str(tmp_path)})
    assert settings.store == "local"
    assert settings.directory == tmp_path / "assets"
    assert settings.public_base_url == "http://127.0.0.1:8080/v1/files"
    assert settings.url("job/0.png") == "http://127.0.0.1:8080/v1/files/job/0.png"
    assert isinstance(open_asset_store(settings), LocalAssetStore)


def test_local_overrides(tmp_path: Path) -> None:
    settings = AssetSettings.from_env(
        {
            "KLIK_ASSET_STORE": "LOCAL",
            "KLIK_ASSET_DIR": str(tmp_path / "media"),
            "KLIK_GATEWAY_PORT": "9000",
        }
    )
    assert settings.directory == tmp_path / "media"
    assert settings.public_base_url == "http://127.0.0.1:9000/v1/files"
    explicit = AssetSettings.from_env({"KLIK_ASSET_BASE_URL": "https://api.klik.example/v1/files/"})
    assert explicit.url("j/0.png") == "https://api.klik.example/v1/files/j/0.png"


def test_s3_defaults_to_aws_in_the_region_with_the_credential_chain() -> None:
    settings = AssetSettings.from_env({**S3, "KLIK_S3_REGION": "eu-west-1"})
    assert settings.s3_endpoint == "https://s3.eu-west-1.amazonaws.com"
    assert (settings.s3_bucket, settings.s3_region) == ("media", "eu-west-1")
    assert settings.s3_access_key_id == settings.s3_secret_access_key == ""
    assert (settings.s3_timeout_seconds, settings.s3_max_attempts) == (30.0, 4)


async def test_s3_settings_open_the_s3_store() -> None:
    settings = AssetSettings.from_env(
        {
            **S3,
            "KLIK_S3_ENDPOINT": "http://minio:9000/",
            "KLIK_S3_REGION": "auto",
            "KLIK_S3_ACCESS_KEY_ID": "AKID",
            "KLIK_S3_SECRET_ACCESS_KEY": "very-secret",
            "KLIK_S3_TIMEOUT_SECONDS": "2.5",
            "KLIK_S3_MAX_ATTEMPTS": "1",
        }
    )
    assert settings.s3_endpoint == "http://minio:9000"
    assert (settings.s3_timeout_seconds, settings.s3_max_attempts) == (2.5, 1)
    store = open_asset_store(settings)
    try:
        assert isinstance(store, S3AssetStore)
        assert store.url("j/0.png") == "http://minio:9000/media/j/0.png"
    finally:
        await store.close()


def test_the_secret_stays_out_of_repr() -> None:
    settings = AssetSettings.from_env(
        {**S3, "KLIK_S3_ACCESS_KEY_ID": "AKID", "KLIK_S3_SECRET_ACCESS_KEY": "very-secret"}
    )
    assert "very-secret" not in repr(settings)
    assert "AKID" in repr(settings)


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"KLIK_ASSET_STORE": "gcs"}, "KLIK_ASSET_STORE"),
        ({"KLIK_ASSET_STORE": "s3"}, "KLIK_S3_BUCKET"),
        ({**S3, "KLIK_S3_ENDPOINT": "minio:9000"}, "KLIK_S3_ENDPOINT"),
        ({**S3, "KLIK_S3_ENDPOINT": "ftp://minio"}, "KLIK_S3_ENDPOINT"),
        ({**S3, "KLIK_S3_ACCESS_KEY_ID": "AKID"}, "KLIK_S3_SECRET_ACCESS_KEY"),
        ({**S3, "KLIK_S3_SECRET_ACCESS_KEY": "s"}, "KLIK_S3_ACCESS_KEY_ID"),
        ({**S3, "KLIK_S3_TIMEOUT_SECONDS": "soon"}, "KLIK_S3_TIMEOUT_SECONDS"),
        ({**S3, "KLIK_S3_TIMEOUT_SECONDS": "0"}, "KLIK_S3_TIMEOUT_SECONDS"),
        ({**S3, "KLIK_S3_MAX_ATTEMPTS": "0"}, "KLIK_S3_MAX_ATTEMPTS"),
        ({**S3, "KLIK_S3_MAX_ATTEMPTS": "many"}, "KLIK_S3_MAX_ATTEMPTS"),
        ({"KLIK_GATEWAY_PORT": "eighty"}, "KLIK_GATEWAY_PORT"),
        ({"KLIK_ASSET_BASE_URL": "/v1/files"}, "KLIK_ASSET_BASE_URL"),
    ],
)
def test_invalid_values_are_config_errors_naming_the_variable(
    env: dict[str, str], names: str
) -> None:
    with pytest.raises(ConfigError, match=names):
        AssetSettings.from_env(env)
