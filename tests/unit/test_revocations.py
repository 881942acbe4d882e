"""kit.revocations without a broker: how long a `user.deleted` event revokes a user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kit.revocations import RevocationFeed
from klik.events.v1.events_pb2 import UserDeleted, UserRegistered
from tests.helpers import envelope


class RecordingCallers:
    def __init__(self) -> None:
        self.revoked: dict[str, float] = {}

    def revoke(self, user_id: str, for_seconds: float = 3600.0) -> None:
        self.revoked[user_id] = for_seconds


def feed(callers: RecordingCallers) -> RevocationFeed:
    return RevocationFeed(js=None, callers=callers, token_lifetime=930.0)  # type: ignore[arg-type]


def deleted(user_id: str, ago: float) -> Any:
    env = envelope("user.deleted", UserDeleted(user_id=user_id))
    env.occurred_at.FromDatetime(datetime.now(UTC) - timedelta(seconds=ago))
    return env


def test_a_deletion_revokes_until_the_last_token_issued_before_it_expires() -> None:
    callers = RecordingCallers()
    feed(callers).apply(deleted("fresh", ago=0))
    feed(callers).apply(deleted("older", ago=900))
    assert 929 < callers.revoked["fresh"] <= 930
    assert 29 < callers.revoked["older"] <= 30


def test_deletions_whose_tokens_are_all_expired_change_nothing() -> None:
    callers = RecordingCallers()
    feed(callers).apply(deleted("ancient", ago=931))
    assert callers.revoked == {}


def test_an_envelope_of_another_type_is_refused() -> None:
    with pytest.raises(ValueError, match="UserDeleted"):
        feed(RecordingCallers()).apply(envelope("user.deleted", UserRegistered(user_id="x")))
