"""The role `premium` from the wallet's plan events: auth (the only owner of roles)
consumes `wallet.plan_changed` from the real JetStream and gives or takes away
`premium`, once per event and never undone by an older event delivered late; the
role is in the next access token."""

from __future__ import annotations

import base64
import json
from typing import Any

from klik.events.v1.events_pb2 import PlanChanged
from tests.auth.conftest import Auth, published
from tests.helpers import envelope, publish_envelope, wait_for


def claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return decoded


async def plan(js: Any, user_id: str, version: int, premium: bool, **kwargs: Any) -> str:
    event = envelope(
        "wallet.plan_changed",
        PlanChanged(
            user_id=user_id,
            plan_id="premium" if premium else "",
            active=premium,
            premium=premium,
            version=version,
        ),
        aggregate_id=user_id,
        **kwargs,
    )
    await publish_envelope(js, event)
    return event.id


async def role_becomes(auth: Auth, token: str, role: str) -> None:
    async def reached() -> bool:
        return (await auth.me(token)).role == role

    await wait_for(reached, 30, message=f"role {role}")


async def test_a_premium_plan_gives_the_role_and_its_end_takes_it(auth: Auth, js: Any) -> None:
    session = await auth.register()
    user_id = session.user.id
    assert claims(session.access_token)["role"] == "user"
    first = await plan(js, user_id, 1, True)
    await role_becomes(auth, session.access_token, "premium")
    # The next access token carries it.
    refreshed = await auth.refresh(session)
    assert refreshed.user.role == "premium"
    assert claims(refreshed.access_token)["role"] == "premium"
    # The same event again (a redelivery under another message id): nothing more.
    await publish_envelope(
        js,
        envelope(
            "wallet.plan_changed",
            PlanChanged(user_id=user_id, plan_id="premium", active=True, premium=True, version=1),
            event_id=first,
            aggregate_id=user_id,
        ),
        msg_id=first + "-again",
    )
    # The plan ends (version 3); then version 2 (active) arrives late: ignored.
    await plan(js, user_id, 3, False)
    await role_becomes(auth, refreshed.access_token, "user")
    await plan(js, user_id, 2, True)
    marker = await auth.register()
    await plan(js, marker.user.id, 1, True)
    await role_becomes(auth, marker.access_token, "premium")  # handled after the late one
    assert (await auth.me(refreshed.access_token)).role == "user"
    later = await auth.refresh(refreshed)
    assert claims(later.access_token)["role"] == "user"
    changes = await published(js, auth, "user.role_changed", user_id)
    assert len(changes) == 2  # user → premium → user, each once


async def test_an_admin_keeps_their_role(auth: Auth, js: Any) -> None:
    admin = await auth.admin()
    await plan(js, admin.user.id, 10**9, True)
    marker = await auth.register()
    await plan(js, marker.user.id, 1, True)
    await role_becomes(auth, marker.access_token, "premium")
    assert (await auth.me(admin.access_token)).role == "admin"
