"""Which asset store to use, from `KLIK_ASSET_*` / `KLIK_S3_*` variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kit.assets.store import AssetStore
from kit.config import GATEWAY_PORT, ConfigError, env_int, env_str, var_dir


@dataclass(frozen=True)
class AssetSettings:
    store: str  # "local" or "s3"
    directory: Path  # local store's root
    public_base_url: str  # asset_url = public_base_url + "/" + key (the gateway's /v1/files)
    s3_endpoint: str  # e.g. https://s3.eu-west-1.amazonaws.com or http://127.0.0.1:9000
    s3_bucket: str
    s3_region: str
    s3_access_key_id: str
    s3_secret_access_key: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AssetSettings:
        store = env_str("KLIK_ASSET_STORE", "local", env).lower()
        if store not in ("local", "s3"):
            raise ConfigError(f"KLIK_ASSET_STORE must be local or s3, got {store!r}")
        gateway_port = env_int("KLIK_GATEWAY_PORT", GATEWAY_PORT, env)
        base = env_str("KLIK_ASSET_BASE_URL", f"http://127.0.0.1:{gateway_port}/v1/files", env)
        settings = cls(
            store=store,
            directory=Path(env_str("KLIK_ASSET_DIR", str(var_dir(env) / "assets"), env)).resolve(),
            public_base_url=base.rstrip("/"),
            s3_endpoint=env_str("KLIK_S3_ENDPOINT", "", env).rstrip("/"),
            s3_bucket=env_str("KLIK_S3_BUCKET", "", env),
            s3_region=env_str("KLIK_S3_REGION", "us-east-1", env),
            s3_access_key_id=env_str("KLIK_S3_ACCESS_KEY_ID", "", env),
            s3_secret_access_key=env_str("KLIK_S3_SECRET_ACCESS_KEY", "", env),
        )
        if store == "s3" and not (settings.s3_endpoint and settings.s3_bucket):
            raise ConfigError("KLIK_ASSET_STORE=s3 needs KLIK_S3_ENDPOINT and KLIK_S3_BUCKET")
        return settings

    def url(self, key: str) -> str:
        return f"{self.public_base_url}/{key}"


def open_asset_store(settings: AssetSettings) -> AssetStore:
    if settings.store == "s3":
        from kit.assets.s3 import S3AssetStore  # only deployments that use S3 load it

        return S3AssetStore(settings)
    from kit.assets.local import LocalAssetStore

    return LocalAssetStore(settings.directory)
