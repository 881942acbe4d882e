"""The usage and operator summary routes end to end through the gateway and every real
service (`python -m stack`): a user's own usage after an IMAGE job, the admin
summaries with their days filled, a non-admin refused with 403, a bad window 400."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from tests.gateway.stack import STACK_ADMIN, RunningStack
from tests.helpers import wait_for

pytestmark = pytest.mark.slow


async def test_summaries_through_the_gateway(real_stack: RunningStack) -> None:
    user = await asyncio.to_thread(real_stack.user, f"usage-{uuid.uuid4().hex[:8]}@example.com")
    admin = await asyncio.to_thread(real_stack.user, STACK_ADMIN)
    today = datetime.now(UTC).date().isoformat()
    as_user = httpx.AsyncClient(
        base_url=real_stack.url, headers={"Authorization": f"Bearer {user}"}, timeout=10
    )
    as_admin = httpx.AsyncClient(
        base_url=real_stack.url, headers={"Authorization": f"Bearer {admin}"}, timeout=10
    )
    async with as_user, as_admin:
        created = await as_user.post(
            "/v1/generations",
            json={"kind": "IMAGE", "prompt": "a blue circle", "idempotency_key": "usage-1"},
        )
        assert created.status_code == 200, created.text
        job_id = created.json()["id"]

        async def charged() -> bool:
            job = (await as_user.get(f"/v1/generations/{job_id}")).json()
            usage = (await as_user.get("/v1/wallet/usage?group_by=day&days=7")).json()
            return bool(job["status"] == "SUCCEEDED" and usage["days"][-1]["credits"] != "0")

        await wait_for(charged, 60, message="the image job charged")
        usage = (await as_user.get("/v1/wallet/usage", params={"days": 7})).json()
        assert [d["date"] for d in usage["days"]][-1] == today and len(usage["days"]) == 7
        assert usage["days"][-1]["by_kind"] == [{"kind": "IMAGE", "credits": "5"}]

        bad = await as_user.get("/v1/wallet/usage", params={"days": 0, "group_by": "hour"})
        assert (bad.status_code, bad.json()["error"]["code"]) == (400, "INVALID_GROUP_BY")
        for route in (
            "/v1/admin/wallet/summary",
            "/v1/admin/generations/summary",
            "/v1/admin/users/summary",
        ):
            denied = await as_user.get(route)
            assert denied.status_code == 403, (route, denied.text)
            assert denied.json()["error"]["status"] == "PERMISSION_DENIED"
            too_long = await as_admin.get(route, params={"days": 1000})
            assert (too_long.status_code, too_long.json()["error"]["code"]) == (400, "INVALID_DAYS")

        money = (await as_admin.get("/v1/admin/wallet/summary", params={"days": 3})).json()
        assert len(money["days"]) == 3 and money["days"][-1]["date"] == today
        spent = {k["kind"]: int(k["credits"]) for k in money["days"][-1]["spent_by_kind"]}
        assert spent["IMAGE"] >= 5
        jobs = (await as_admin.get("/v1/admin/generations/summary", params={"days": 3})).json()
        by_status = {c["label"]: int(c["jobs"]) for c in jobs["days"][-1]["by_status"]}
        assert by_status["SUCCEEDED"] >= 1
        sandbox = {p["provider"]: p for p in jobs["providers"]}["sandbox"]
        assert sandbox["circuit_state"] == "closed" and int(sandbox["jobs"]) >= 1
        people = (await as_admin.get("/v1/admin/users/summary", params={"days": 2})).json()
        assert [d["date"] for d in people["days"]][-1] == today
        assert int(people["days"][-1]["signups"]) >= 2
        assert int(people["days"][-1]["active_users"]) >= 2
