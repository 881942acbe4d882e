"""Which asset store to use, from `KLIK_ASSET_*` / `KLIK_S3_*` variables.

Generation (writes) and the gateway (serves `/v1/files`) must see the same store:
give both processes the same values.

    KLIK_ASSET_STORE           local | s3                                 (local)
    KLIK_ASSET_DIR             the local store's directory       ($KLIK_VAR_DIR/assets)
    KLIK_ASSET_BASE_URL        public prefix of asset URLs
                                   (http://127.0.0.1:$KLIK_GATEWAY_PORT/v1/files)
    KLIK_S3_ENDPOINT           S3 API base URL, path-style requests
                                   (https://s3.$KLIK_S3_REGION.amazonaws.com)
    KLIK_S3_BUCKET             the bucket (required with s3)
    KLIK_S3_REGION             SigV4 signing region (us-east-1; R2: auto)
    KLIK_S3_ACCESS_KEY_ID      static key pair; both empty: botocore's default
    KLIK_S3_SECRET_ACCESS_KEY      chain (AWS_* variables, profile, IRSA, instance role)
    KLIK_S3_TIMEOUT_SECONDS    timeout of each S3 HTTP read/write (30)
    KLIK_S3_MAX_ATTEMPTS       attempts per S3 request, the first included (4)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from kit.assets.store import AssetStore
from kit.config import GATEWAY_PORT, ConfigError, env_float, env_int, env_str, var_dir


@dataclass(frozen=True)
class AssetSettings:
    store: str  # "local" or "s3"
    directory: Path  # local store's root
    public_base_url: str  # asset_url = public_base_url + "/" + key (the gateway's /v1/files)
    s3_endpoint: str  # e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:9000
    s3_bucket: str
    s3_region: str
    s3_access_key_id: str
    # Kept out of repr(): settings objects end up in logs and tracebacks.
    s3_secret_access_key: str = field(repr=False)
    s3_timeout_seconds: float = 30.0
    s3_max_attempts: int = 4

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AssetSettings:
        store = env_str("KLIK_ASSET_STORE", "local", env).lower()
        if store not in ("local", "s3"):
            raise ConfigError(f"KLIK_ASSET_STORE must be local or s3, got {store!r}")
        gateway_port = env_int("KLIK_GATEWAY_PORT", GATEWAY_PORT, env)
        base = env_str("KLIK_ASSET_BASE_URL", f"http://127.0.0.1:{gateway_port}/v1/files", env)
        region = env_str("KLIK_S3_REGION", "us-east-1", env)
        settings = cls(
            store=store,
            directory=Path(env_str("KLIK_ASSET_DIR", str(var_dir(env) / "assets"), env)).resolve(),
            public_base_url=base.rstrip("/"),
            s3_endpoint=env_str(
                "KLIK_S3_ENDPOINT", f"https://s3.{region}.amazonaws.com", env
            ).rstrip("/"),
            s3_bucket=env_str("KLIK_S3_BUCKET", "", env),
            s3_region=region,
            s3_access_key_id=env_str("KLIK_S3_ACCESS_KEY_ID", "", env),
            s3_secret_access_key=env_str("KLIK_S3_SECRET_ACCESS_KEY", "", env),
            s3_timeout_seconds=env_float("KLIK_S3_TIMEOUT_SECONDS", 30.0, env),
            s3_max_attempts=env_int("KLIK_S3_MAX_ATTEMPTS", 4, env),
        )
        check_url("KLIK_ASSET_BASE_URL", settings.public_base_url)
        if store == "s3":
            _check_s3(settings)
        return settings

    def url(self, key: str) -> str:
        return f"{self.public_base_url}/{key}"


def check_url(name: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL, got {url!r}")


def _check_s3(settings: AssetSettings) -> None:
    check_url("KLIK_S3_ENDPOINT", settings.s3_endpoint)
    if not settings.s3_bucket:
        raise ConfigError("KLIK_ASSET_STORE=s3 needs KLIK_S3_BUCKET")
    if bool(settings.s3_access_key_id) != bool(settings.s3_secret_access_key):
        raise ConfigError(
            "set both KLIK_S3_ACCESS_KEY_ID and KLIK_S3_SECRET_ACCESS_KEY, or neither "
            "(then AWS's default credential chain applies)"
        )
    if settings.s3_timeout_seconds <= 0:
        raise ConfigError("KLIK_S3_TIMEOUT_SECONDS must be positive")
    if settings.s3_max_attempts < 1:
        raise ConfigError("KLIK_S3_MAX_ATTEMPTS must be at least 1")


def open_asset_store(settings: AssetSettings) -> AssetStore:
    if settings.store == "s3":
        from kit.assets.s3 import S3AssetStore  # only deployments that use S3 load it

        return S3AssetStore(settings)
    from kit.assets.local import LocalAssetStore

    return LocalAssetStore(settings.directory)
