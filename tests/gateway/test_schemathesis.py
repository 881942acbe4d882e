"""Property-based tests of the real stack against its own `/openapi.json`
(schemathesis): every documented operation, called with generated valid and
invalid inputs as a signed-in user, never answers 5xx, and every response conforms
to the document (status, content type, body schema).

Bounded for CI: few derandomized examples per operation, so the run is repeatable
and takes a fixed, small time. `/v1/events` is left out: it is a stream that stays
open by design (a request/response fuzzer would wait on it forever); test_events.py
covers it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.gateway.stack import RunningStack

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
STREAMS = "/v1/events"
MUST_SUCCEED = {
    "GET /v1/auth/me",
    "GET /v1/wallet",
    "GET /v1/wallet/transactions",
    "GET /v1/pricing",
    "GET /v1/providers",
    "GET /v1/generations",
    "GET /v1/posts",
    "POST /v1/posts",
    "GET /v1/assets",
    "POST /v1/chats",
    "GET /v1/chats",
    "GET /v1/lessons",
}
Operation = APIOperation[Any, Any, Any, Any]


@pytest.fixture(scope="module")
def token(real_stack: RunningStack) -> str:
    return real_stack.user(f"fuzz-{uuid.uuid4().hex[:8]}@example.com")


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def operations(stack: RunningStack) -> list[Operation]:
    schema = schemathesis.openapi.from_url(f"{stack.url}/openapi.json")
    found = []
    for result in schema.exclude(path=STREAMS).get_all_operations():
        assert isinstance(result, Ok), f"the document has an invalid operation: {result.err()}"
        found.append(result.ok())
    assert len(found) > 30, "the document lost its routes"
    return found


def fuzz(operation: Operation, mode: GenerationMode, call: Callable[[Any], None]) -> str | None:
    """Run `call` on generated cases of `operation`; the first failure, if any."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        call(case)

    try:
        run()
    except Unsatisfiable:
        # No invalid input exists (an operation without parameters, or with only
        # free-form strings): nothing to send in NEGATIVE mode.
        assert mode is GenerationMode.NEGATIVE, operation.label
    except (Exception, BaseExceptionGroup) as failure:  # reported with its operation
        return f"{operation.label} ({mode.value}): {failure}"
    return None


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_keeps_its_document(
    real_stack: RunningStack, token: str, http: requests.Session, mode: GenerationMode
) -> None:
    statuses: dict[str, set[int]] = {}

    def call(case: Any) -> None:
        response = case.call_and_validate(
            session=http,
            headers={"Authorization": f"Bearer {token}"},
            checks=CHECKS,
            timeout=15,
        )
        statuses.setdefault(case.operation.label, set()).add(response.status_code)

    failures = [failure for op in operations(real_stack) if (failure := fuzz(op, mode, call))]
    print(*(f"{label}: {sorted(codes)}" for label, codes in sorted(statuses.items())), sep="\n")
    assert not failures, "\n\n".join(failures)
    if mode is GenerationMode.POSITIVE:
        # The token works and valid input gets through to every service, not just
        # 401s and 400s: these need no existing id, so some generated case succeeds.
        succeeded = {label for label, codes in statuses.items() if any(c < 300 for c in codes)}
        assert succeeded >= MUST_SUCCEED, sorted(statuses.items())
