"""An S3-compatible asset store (to be written: see kit/assets/store.py)."""

from __future__ import annotations

from kit.assets.settings import AssetSettings


class S3AssetStore:
    def __init__(self, settings: AssetSettings) -> None:
        raise NotImplementedError("S3 asset store not written yet")
