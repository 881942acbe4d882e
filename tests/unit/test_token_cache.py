"""kit.tokens.TokenVerifier remembers tokens that verified: keyed by the whole token
(a forged signature never hits), bounded, never past the token's `exp`, dropped
when the user is revoked."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from kit.callers import Callers
from kit.errors import Unauthenticated
from kit.identity import load_trust
from kit.tokens import TokenVerifier
from tests.unit.test_tokens import Jwks, Metadata, mint, refused


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signature was checked, in order."""
    checked: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        checked.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr("kit.tokens.jwt.decode", counting)
    return checked


async def test_a_token_is_checked_once_and_only_that_token_hits(decodes: list[str]) -> None:
    jwks = Jwks()
    key = jwks.add("k1")
    verifier = TokenVerifier(jwks)
    token = mint(key, "k1")
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first
    assert decodes == [token]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert await refused(verifier, forged) == "INVALID_TOKEN"
    assert decodes == [token, forged]


async def test_the_cache_is_bounded_least_recently_used_first(decodes: list[str]) -> None:
    jwks = Jwks()
    key = jwks.add("k1")
    verifier = TokenVerifier(jwks, cache_size=2)
    a, b, c = (mint(key, "k1") for _ in range(3))
    for token in (a, b, a, c):  # c pushes out b, the least recently used
        await verifier.verify(token)
    assert decodes == [a, b, c]
    await verifier.verify(a)
    await verifier.verify(b)
    assert decodes == [a, b, c, b]


async def test_a_token_is_never_remembered_past_its_exp(decodes: list[str]) -> None:
    jwks = Jwks()
    key = jwks.add("k1")
    verifier = TokenVerifier(jwks, leeway=30)
    # Expired five seconds ago, still inside the leeway: valid, but not cached.
    late = mint(key, "k1", exp=int(time.time()) - 5)
    await verifier.verify(late)
    await verifier.verify(late)
    assert decodes == [late, late]
    # And a token is kept no longer than cache_seconds either.
    brief = TokenVerifier(jwks, cache_seconds=0)
    token = mint(key, "k1")
    await brief.verify(token)
    await brief.verify(token)
    assert decodes == [late, late, token, token]


async def test_revoking_a_user_drops_their_tokens(decodes: list[str], tmp_path: Path) -> None:
    jwks = Jwks()
    key = jwks.add("k1")
    verifier = TokenVerifier(jwks)
    mine, theirs = mint(key, "k1"), mint(key, "k1", sub="user-2")
    await verifier.verify(mine)
    await verifier.verify(theirs)
    assert verifier.forget_user("user-1") == 1
    await verifier.verify(mine)
    await verifier.verify(theirs)
    assert decodes == [mine, theirs, mine]

    callers = Callers("wallet", verifier, load_trust(tmp_path))
    callers.revoke("user-2")
    with pytest.raises(Unauthenticated):
        await callers.user(Metadata(theirs))
    assert decodes == [mine, theirs, mine, theirs], "checked afresh after the revocation"
