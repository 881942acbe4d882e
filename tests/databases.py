"""Test databases: a fresh PostgreSQL database per test when the server is reachable,
else a temporary SQLite file (unless KLIK_TEST_REQUIRE_POSTGRES=1 forbids that)."""

from __future__ import annotations

import functools
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

ADMIN_URL_ENV = "KLIK_TEST_DATABASE_URL"
REQUIRE_POSTGRES_ENV = "KLIK_TEST_REQUIRE_POSTGRES"
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Backend:
    """Where test databases live; `admin_url` is None when falling back to SQLite."""

    admin_url: URL | None
    unreachable_reason: str = ""

    @property
    def postgres_required(self) -> bool:
        return os.environ.get(REQUIRE_POSTGRES_ENV, "") not in ("", "0")

    def describe(self) -> str:
        if self.admin_url is not None:
            return (
                f"postgresql at {self.admin_url.host}:{self.admin_url.port or 5432} "
                "(fresh database per test)"
            )
        return f"sqlite (PostgreSQL unreachable: {self.unreachable_reason})"


def _conninfo(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@functools.cache
def backend() -> Backend:
    """Decided once per session: is the PostgreSQL at $KLIK_TEST_DATABASE_URL up?"""
    url = make_url(os.environ.get(ADMIN_URL_ENV, DEFAULT_ADMIN_URL))
    try:
        with psycopg.connect(_conninfo(url), connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return Backend(admin_url=None, unreachable_reason=f"{url.host}:{url.port}: {reason}")
    return Backend(admin_url=url)


class Databases:
    """Creates databases for one test and drops them all afterwards."""

    def __init__(self, sqlite_dir: Path) -> None:
        self._backend = backend()
        self._sqlite_dir = sqlite_dir
        self._created: list[str] = []

    def create(self) -> str:
        admin = self._backend.admin_url
        if admin is None:
            if self._backend.postgres_required:
                raise RuntimeError(f"{REQUIRE_POSTGRES_ENV} is set but {self._backend.describe()}")
            path = self._sqlite_dir / f"db-{len(self._created)}.sqlite"
            self._created.append(str(path))
            return f"sqlite+aiosqlite:///{path}"
        name = f"klik_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self._created.append(name)
        return admin.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        admin = self._backend.admin_url
        if admin is None:
            return
        with psycopg.connect(_conninfo(admin), autocommit=True) as conn:
            for name in self._created:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
        self._created.clear()
