"""Secrets at rest (services/auth/kek.py) through the real service on PostgreSQL: the
database holds no plaintext private key or TOTP secret, keys stored in plaintext
before are sealed at start-up, a wrong KEK stops start-up with a clear error, and a
new KEK takes over by rotation (old rows re-sealed, the old key then droppable)."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime

import jwt
import pytest
from sqlalchemy import insert, select

from kit import db
from kit.config import ConfigError
from kit.server import Server
from klik.auth.v1 import auth_pb2
from services.auth import kek, store, totp
from services.auth.keys import generate
from services.auth.service import MIGRATIONS, make_spec
from services.auth.settings import AuthOptions
from services.auth.store import KeyStatus
from tests.auth.conftest import BASE_ENV, TEST_KEK, Auth, AuthStack
from tests.helpers import free_port

OTHER_KEK = "test1:" + base64.b64encode(bytes(range(100, 132))).decode()
NEW_KEK = "new2:" + base64.b64encode(bytes(range(50, 82))).decode()


async def stored_secrets(auth: Auth) -> list[str]:
    async with auth.uow.read() as session:
        keys = (await session.execute(select(store.signing_keys.c.private_key))).scalars()
        factors = (await session.execute(select(store.totp_factors.c.secret))).scalars()
        return [*keys, *factors]


async def enrol(auth: Auth) -> str:
    session = await auth.register()
    reply = await auth.stub.EnrollTotp(
        auth_pb2.EnrollTotpRequest(), metadata=session.metadata, timeout=10
    )
    secret: str = reply.secret
    return secret


async def failed_start(stack: AuthStack, kek_value: str) -> BaseException:
    """Start a replica with `kek_value` that must fail its start-up; the error."""
    env = {
        **BASE_ENV,
        "KLIK_AUTH_KEK": kek_value,
        "KLIK_SERVICE_KEYS_DIR": str(stack.keys_dir),
        "KLIK_AUTH_PORT": str(free_port()),
    }
    server = Server(make_spec(AuthOptions.from_env(env)), stack.settings(env))
    await server.start()
    try:
        await asyncio.wait_for(server.failed.wait(), 30)
        assert not server.ready.is_set()
        assert server.failure is not None
        return server.failure
    finally:
        await server.shutdown()


async def test_the_database_holds_no_plaintext_secret(auth: Auth) -> None:
    secret = await enrol(auth)
    await auth.register()
    stored = await stored_secrets(auth)
    assert len(stored) >= 3  # two signing keys and the factor
    for value in stored:
        assert kek.key_id_of(value) == "test1"
        assert "PRIVATE KEY" not in value and secret not in value


async def test_plaintext_keys_from_before_are_sealed_at_start_up(stack: AuthStack) -> None:
    engine = db.make_engine(stack.database_url)
    await db.migrate(engine, MIGRATIONS)
    kid, pem, x = generate()
    async with engine.begin() as conn:
        await conn.execute(
            insert(store.signing_keys).values(
                kid=kid,
                status=KeyStatus.CURRENT,
                private_key=pem,
                public_key=x,
                created_at=datetime.now(UTC),
                activated_at=datetime.now(UTC),
            )
        )
    await engine.dispose()
    auth = await stack.start()
    assert all(kek.key_id_of(value) == "test1" for value in await stored_secrets(auth))
    # The sealed key still signs (it was current): tokens carry its kid and verify.
    session = await auth.register()
    assert jwt.get_unverified_header(session.access_token)["kid"] == kid
    assert (await auth.me(session.access_token)).id == session.user.id


async def test_a_wrong_kek_stops_start_up_with_a_clear_error(stack: AuthStack) -> None:
    first = await stack.start()
    await enrol(first)
    await stack.stop(first)
    # The same key id with another key ...
    error = await failed_start(stack, OTHER_KEK)
    assert isinstance(error, kek.KekError)
    assert "does not open with key-encryption key 'test1'" in str(error)
    # ... and a key list without the key the rows were sealed with.
    error = await failed_start(stack, NEW_KEK)
    assert isinstance(error, kek.KekError) and "'test1', which is not in" in str(error)


async def test_rotation_reseals_everything_under_the_new_kek(stack: AuthStack) -> None:
    first = await stack.start()
    secret = await enrol(first)
    session = await first.register()
    await stack.stop(first)

    rotated = await stack.start(KLIK_AUTH_KEK=f"{NEW_KEK},{TEST_KEK}")
    assert {kek.key_id_of(value) for value in await stored_secrets(rotated)} == {"new2"}
    assert (await rotated.me(session.access_token)).id == session.user.id
    await stack.stop(rotated)

    # The old key can go now; the re-sealed TOTP secret still opens.
    only_new = await stack.start(KLIK_AUTH_KEK=NEW_KEK)
    async with only_new.uow.read() as db_session:
        [sealed] = (await db_session.execute(select(store.totp_factors.c.secret))).scalars()
        user_id = (await db_session.execute(select(store.totp_factors.c.user_id))).scalar_one()
    sealer = kek.Sealer(kek.parse(NEW_KEK, "test"))
    assert sealer.open(sealed, f"totp_secret:{user_id}").decode() == secret
    assert (await only_new.register()).access_token


def test_kek_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="32 bytes"):
        kek.parse("k1:" + base64.b64encode(b"short").decode(), "KLIK_AUTH_KEK")
    with pytest.raises(ConfigError, match="twice"):
        kek.parse(f"{TEST_KEK},{TEST_KEK}", "KLIK_AUTH_KEK")
    with pytest.raises(ConfigError, match="needs a key-encryption key"):
        kek.from_env({"KLIK_SERVICE_KEYS_DIR": "/nonexistent"})
    # A sealed value moved to another row does not open there.
    sealer = kek.Sealer(kek.parse(TEST_KEK, "test"))
    sealed = sealer.seal(totp.new_secret().encode(), "totp_secret:a")
    with pytest.raises(kek.KekError):
        sealer.open(sealed, "totp_secret:b")
