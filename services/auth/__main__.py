"""`python -m services.auth`: serve the auth service until SIGTERM/SIGINT.

`python -m services.auth rotate-key`: make the next signing key sign from now on (an
operator's forced rotation; automatic rotation needs no command). Tokens signed by
the previous key keep verifying until they expire.

`python -m services.auth generate-kek`: print a new key-encryption key entry
(`id:base64key`) for KLIK_AUTH_KEK / KLIK_AUTH_KEK_FILE (services/auth/kek.py)."""

import asyncio
import sys

from kit.config import ServiceSettings
from kit.db import UnitOfWork, make_engine, migrate, session_factory
from kit.server import main
from services.auth import kek
from services.auth.keys import Keyring
from services.auth.service import MIGRATIONS, SPEC
from services.auth.settings import AuthOptions


async def rotate_key() -> str:
    settings = ServiceSettings.from_env("auth")
    engine = make_engine(settings.database_url)
    try:
        await migrate(engine, MIGRATIONS)
        options = AuthOptions.from_env()
        keyring = Keyring.of_service(
            UnitOfWork(session_factory(engine)),
            options.sealer,
            settings,
            options.signing_key_rotation_seconds,
        )
        return await keyring.rotate()
    finally:
        await engine.dispose()


if __name__ == "__main__":
    if sys.argv[1:] == ["rotate-key"]:
        print(f"signing with key {asyncio.run(rotate_key())}")
    elif sys.argv[1:] == ["generate-kek"]:
        print(kek.new_key_line())
    elif sys.argv[1:]:
        sys.exit(f"usage: python -m services.auth [rotate-key | generate-kek]\n{__doc__}")
    else:
        main(SPEC)
