"""The default a newcomer gets (`python -m stack`, PostgreSQL when reachable), end to
end through the gateway: registering mails a verification link to the sandbox's SMTP
sink; until it is followed the wallet is empty and paid generation is refused
(EMAIL_NOT_VERIFIED); following it (twice) pays the signup bonus exactly once, and a
refreshed token can generate."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.gateway.stack import RunningStack, running_stack

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def default_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    # The issue's defaults, not the other stack tests' (tests/gateway/stack.py).
    with running_stack(
        tmp_path_factory.mktemp("stack"),
        KLIK_SIGNUP_BONUS_ON="verified",
        KLIK_REQUIRE_VERIFIED_EMAIL="1",
    ) as running:
        yield running


def mail_to(stack: RunningStack, address: str) -> list[dict[str, Any]]:
    sandbox = f"http://127.0.0.1:{stack.env['KLIK_SANDBOX_PORT']}"
    reply = httpx.get(f"{sandbox}/_sandbox/mail", params={"to": address}, timeout=10)
    assert reply.status_code == 200, reply.text
    messages: list[dict[str, Any]] = reply.json()["messages"]
    return messages


def wait(condition: Any, within: float = 20.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.1)


def test_the_bonus_and_paid_work_wait_for_a_verified_email(default_stack: RunningStack) -> None:
    email = f"newcomer-{uuid.uuid4().hex[:8]}@example.com"
    with httpx.Client(base_url=default_stack.url, timeout=15) as client:
        registered = client.post(
            "/v1/auth/register",
            json={"email": email, "password": PASSWORD, "display_name": "Newcomer"},
        )
        assert registered.status_code == 200, registered.text
        assert registered.json()["email_verified"] is False
        login = client.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
        bearer = {"Authorization": f"Bearer {login['access_token']}"}

        # The wallet opens empty: no bonus for an unproved address.
        wallet = wait(lambda: (r := client.get("/v1/wallet", headers=bearer)).is_success and r)
        assert int(wallet.json()["balance"]) == 0, wallet.text
        refused = client.post(
            "/v1/generations",
            headers=bearer,
            json={"kind": "IMAGE", "prompt": "a red square", "idempotency_key": "v-1"},
        )
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "EMAIL_NOT_VERIFIED"

        # The link arrives at the sink and points at KLIK_PUBLIC_URL (the gateway).
        [message] = wait(lambda: mail_to(default_stack, email))
        match = re.search(r"(http://\S+)/verify-email\?token=([\w-]+)", message["text"])
        assert match and match.group(1) == default_stack.url, message["text"]
        token = match.group(2)
        for _ in range(2):  # a double click verifies once
            verified = client.post("/v1/auth/verify-email", json={"token": token})
            assert verified.status_code == 200, verified.text
            assert verified.json()["email_verified"] is True

        def balance() -> int:
            return int(client.get("/v1/wallet", headers=bearer).json()["balance"])

        assert wait(lambda: balance() == 100)
        refreshed = client.post(
            "/v1/auth/refresh", json={"refresh_token": login["refresh_token"]}
        ).json()
        bearer = {"Authorization": f"Bearer {refreshed['access_token']}"}
        created = client.post(
            "/v1/generations",
            headers=bearer,
            json={"kind": "IMAGE", "prompt": "a red square", "idempotency_key": "v-2"},
        )
        assert created.status_code == 200, created.text
        transactions = client.get("/v1/wallet/transactions", headers=bearer).json()
        bonuses = [t for t in transactions["transactions"] if t["kind"] == "signup_bonus"]
        assert [int(b["amount"]) for b in bonuses] == [100]
        assert len(mail_to(default_stack, email)) == 1
