"""Storage of generated media (images, videos) that must outlive the provider's
expiring URLs.

Generation `put`s a job's output under a key (`<job_id>/<n><ext>`, see `keys`); the
gateway serves it at `GET /v1/files/<key>` from the same store, so `asset_url` is one
stable public URL whichever store is configured. Keys are capabilities: they hold a
random job UUID, so only whoever was given the URL can fetch the file.

Stores: `local` (a directory, the embedded default `var/assets`) and `s3` (any
S3-compatible bucket), chosen by `KLIK_ASSET_STORE` (see `settings`).
"""

from kit.assets.keys import InvalidAssetKey, asset_key, check_key
from kit.assets.settings import AssetSettings, open_asset_store
from kit.assets.store import AssetExists, AssetInfo, AssetStore, AssetStoreError

__all__ = [
    "AssetExists",
    "AssetInfo",
    "AssetSettings",
    "AssetStore",
    "AssetStoreError",
    "InvalidAssetKey",
    "asset_key",
    "check_key",
    "open_asset_store",
]
