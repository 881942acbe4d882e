"""Secrets at rest: auth's private signing keys and TOTP secrets are sealed with
AES-256-GCM under a key-encryption key (KEK) that lives outside the database.

The KEK comes from `KLIK_AUTH_KEK` (base64 of 32 bytes), else from the file
`KLIK_AUTH_KEK_FILE` (same format, e.g. a mounted secret), else from
`$KLIK_SERVICE_KEYS_DIR/auth.kek` when that file exists (the embedded stack creates
it on its first run, `generate_file`). Without any, auth refuses to start.

Rotation: the value may list several keys, `id1:key1,id2:key2`. The first seals
everything new; every listed key opens what it sealed (each sealed value names its
key id). At start-up auth re-seals every value sealed under another listed key with
the first one (and seals values stored in plaintext before this existed), so once a
replica has started with the new list, the old key can be dropped from it.

A sealed value is the text `kek1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>`. The
AES-GCM associated data binds it to its key id and to what it is (`context`: e.g.
`signing_key:<kid>`), so a sealed value copied to another row does not open there."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kit.config import ConfigError, env_str, service_keys_dir

PREFIX = "kek1"
KEY_BYTES = 32
NONCE_BYTES = 12
DEFAULT_FILE_NAME = "auth.kek"
_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")


class KekError(Exception):
    """A sealed value cannot be opened with the configured keys (a wrong or missing
    KEK, or a tampered value). Auth does not start with one."""


@dataclass(frozen=True)
class Kek:
    id: str
    key: bytes


def _b64decode(text: str) -> bytes:
    text = text.strip()
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))


def parse(value: str, source: str) -> tuple[Kek, ...]:
    """`key` or `id:key[,id:key…]` (keys base64, standard or URL-safe, of 32 bytes);
    ConfigError naming `source` otherwise. A bare key's id is derived from the key."""
    keys: list[Kek] = []
    for item in value.split(","):
        if not item.strip():
            continue
        key_id, _, encoded = item.strip().rpartition(":")
        try:
            key = _b64decode(encoded)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise ConfigError(f"{source}: each key must be base64 of {KEY_BYTES} bytes")
        key_id = key_id or "k" + hashlib.sha256(key).hexdigest()[:8]
        if not _KEY_ID.fullmatch(key_id):
            raise ConfigError(f"{source}: key id {key_id!r} must be 1-32 of A-Z a-z 0-9 _ . -")
        if any(known.id == key_id for known in keys):
            raise ConfigError(f"{source}: key id {key_id!r} is listed twice")
        keys.append(Kek(key_id, key))
    if not keys:
        raise ConfigError(f"{source} holds no key")
    return tuple(keys)


def from_env(env: Mapping[str, str] | None = None) -> Sealer:
    """The KEKs configured in `env` (see the module docstring); ConfigError without."""
    inline = env_str("KLIK_AUTH_KEK", "", env)
    if inline.strip():
        return Sealer(parse(inline, "KLIK_AUTH_KEK"))
    named = env_str("KLIK_AUTH_KEK_FILE", "", env)
    path = Path(named) if named.strip() else service_keys_dir(env) / DEFAULT_FILE_NAME
    if not path.is_file():
        if named.strip():
            raise ConfigError(f"KLIK_AUTH_KEK_FILE: {path} does not exist")
        raise ConfigError(
            "auth needs a key-encryption key: set KLIK_AUTH_KEK (base64 of 32 bytes; "
            "`python -m services.auth generate-kek` prints one) or KLIK_AUTH_KEK_FILE, "
            f"or put one in {path}"
        )
    return Sealer(parse(path.read_text("utf-8"), str(path)))


def new_key_line() -> str:
    """A fresh `id:key` entry: a random 32-byte key under a random id."""
    key = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    return f"k{secrets.token_hex(4)}:{key}"


def ephemeral() -> Sealer:
    """A sealer with a random key nobody else has (what is sealed with it is lost
    with it): for options built in code, never from the environment."""
    return Sealer([Kek("ephemeral", secrets.token_bytes(KEY_BYTES))])


def generate_file(path: Path) -> bool:
    """Create `path` (mode 0600) with one new key unless it exists; whether it did."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        out.write(new_key_line() + "\n")
    return True


class Sealer:
    """Seals and opens secrets with the configured KEKs (the first one seals)."""

    def __init__(self, keys: Sequence[Kek]) -> None:
        if not keys:
            raise ValueError("at least one KEK is needed")
        self._current = keys[0]
        self._keys = {key.id: AESGCM(key.key) for key in keys}

    @property
    def current_id(self) -> str:
        return self._current.id

    def seal(self, plaintext: bytes, context: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._keys[self._current.id].encrypt(
            nonce, plaintext, _aad(self._current.id, context)
        )
        encoded = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()
        return f"{PREFIX}:{self._current.id}:{encoded}"

    def open(self, value: str, context: str) -> bytes:
        """The plaintext of a sealed `value`; KekError when no configured key opens it."""
        key_id = key_id_of(value)
        if key_id is None:
            raise KekError(f"{context} is not sealed")
        aead = self._keys.get(key_id)
        if aead is None:
            raise KekError(
                f"{context} is sealed with key-encryption key {key_id!r}, which is not in "
                "KLIK_AUTH_KEK / KLIK_AUTH_KEK_FILE (keep an old key listed until start-up "
                "has re-sealed everything under the new one)"
            )
        raw = _b64decode(value.split(":", 2)[2])
        try:
            return aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(key_id, context))
        except InvalidTag:
            raise KekError(
                f"{context} does not open with key-encryption key {key_id!r}: the key "
                "configured under that id is not the one it was sealed with"
            ) from None

    def is_current(self, value: str) -> bool:
        """Whether `value` is sealed under the key that seals now."""
        return key_id_of(value) == self._current.id


def key_id_of(value: str) -> str | None:
    """The KEK id a sealed value names; None for a value that is not sealed."""
    prefix, _, rest = value.partition(":")
    if prefix != PREFIX or ":" not in rest:
        return None
    return rest.partition(":")[0]


def _aad(key_id: str, context: str) -> bytes:
    return f"klik.auth|{key_id}|{context}".encode()
