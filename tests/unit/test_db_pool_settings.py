"""The database pool of a service is configurable: KLIK_<SERVICE>_DB_POOL_SIZE and
KLIK_<SERVICE>_DB_MAX_OVERFLOW reach the engine."""

from __future__ import annotations

import pytest

from kit.config import ConfigError, ServiceSettings
from kit.db import make_engine

URL = "postgresql+psycopg://klik@127.0.0.1:5432/klik_nowhere"


def test_the_pool_settings_are_read_per_service() -> None:
    settings = ServiceSettings.from_env(
        "wallet", {"KLIK_WALLET_DB_POOL_SIZE": "3", "KLIK_WALLET_DB_MAX_OVERFLOW": "0"}
    )
    assert (settings.db_pool_size, settings.db_max_overflow) == (3, 0)
    defaults = ServiceSettings.from_env("auth", {"KLIK_WALLET_DB_POOL_SIZE": "3"})
    assert (defaults.db_pool_size, defaults.db_max_overflow) == (20, 0)
    with pytest.raises(ConfigError):
        ServiceSettings.from_env("wallet", {"KLIK_WALLET_DB_POOL_SIZE": "0"})


async def test_make_engine_sizes_the_pool() -> None:
    engine = make_engine(URL, pool_size=3, max_overflow=1)
    try:
        pool = engine.sync_engine.pool
        assert (pool.size(), pool._max_overflow) == (3, 1)  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
    same = make_engine(URL, pool_size=4)
    try:
        assert same.sync_engine.pool._max_overflow == 0  # type: ignore[attr-defined]
    finally:
        await same.dispose()
