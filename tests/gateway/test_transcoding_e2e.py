"""Through the gateway to a real gRPC server, on real sockets: a kit server (real
database and nats-server) runs small fake Auth, Wallet and Content services; the
gateway transcodes HTTP/JSON to them. Status codes, JSON bodies, the error shape,
metadata forwarding, limits, CORS and the API document, as a client sees them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from tests.gateway.fakes import StartGateway, Upstream, error_of

# ---- calls that succeed -----------------------------------------------------------------


async def test_a_call_goes_through_with_every_field_printed(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    reply = await gateway.post("/v1/auth/login", json={"email": "a@x.io", "password": "pw"})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == {
        "access_token": "at",
        "refresh_token": "",
        "token_type": "Bearer",
        "expires_in": 900,
        "user": {
            "id": "u-1",
            "email": "a@x.io",
            "display_name": "",
            "role": "user",
            "created_at": "2024-01-02T03:04:05Z",
            "email_verified": False,
            "handle": "",
            "bio": "",
            "avatar_asset_id": "",
            "avatar_url": "",
        },
        "two_factor_required": False,
        "challenge": "",
        "challenge_expires_in": 0,
    }
    request, _ = upstream.seen["Login"]
    assert (request.email, request.password) == ("a@x.io", "pw")


async def test_response_body_answers_with_the_named_field(gateway: httpx.AsyncClient) -> None:
    reply = await gateway.post(
        "/v1/auth/register", json={"email": "n@x.io", "password": "p", "display_name": "N"}
    )
    assert reply.status_code == 200
    assert reply.json() == {
        "id": "u-2",
        "email": "n@x.io",
        "display_name": "N",
        "role": "",
        "email_verified": False,
        "handle": "",
        "bio": "",
        "avatar_asset_id": "",
        "avatar_url": "",
    }


async def test_path_variables_and_body_fill_one_request(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    reply = await gateway.post("/v1/admin/users/u%2D7/role", json={"role": "admin"})
    assert reply.status_code == 200
    assert reply.json()["id"] == "u-7" and reply.json()["role"] == "admin"
    request, _ = upstream.seen["SetRole"]
    assert (request.user_id, request.role) == ("u-7", "admin")


async def test_query_parameters_reach_the_service(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    reply = await gateway.get("/v1/admin/users", params={"page_size": 5, "page_token": "c1"})
    assert reply.status_code == 200
    assert [u["id"] for u in reply.json()["users"]] == ["a", "b"]
    assert reply.json()["next_page_token"] == ""
    request, _ = upstream.seen["ListUsers"]
    assert (request.page_size, request.page_token) == (5, "c1")


async def test_int64_travels_exactly_and_prints_as_a_string(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    wallet = (await gateway.get("/v1/wallet")).json()
    assert wallet == {
        "user_id": "u-1",
        "balance": "100",
        "held": "30",
        "available": "70",
        "debt": "0",
        "low_balance": "0",
        "buckets": {"purchase": "0", "allowance": "40", "grant": "0", "bonus": "60"},
        "next_expiry": {"amount": "10", "expires_at": "2030-03-17T17:46:40Z"},
    }
    big = "9007199254740993"  # 2^53 + 1: a float would lose it
    reply = await gateway.post(
        "/v1/admin/wallets/u-1/credits", json={"amount": big, "idempotency_key": "k"}
    )
    assert reply.status_code == 200
    assert reply.json()["amount"] == big and reply.json()["balance_after"] == big
    request, _ = upstream.seen["GrantCredits"]
    assert (request.user_id, request.amount) == ("u-1", 9007199254740993)


async def test_patch_sends_the_body_keys_as_the_update_mask(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    reply = await gateway.patch("/v1/posts/p-1", json={"title": "New", "visibility": "public"})
    assert reply.status_code == 200
    assert reply.json()["id"] == "p-1" and reply.json()["title"] == "New"
    request, _ = upstream.seen["UpdatePost"]
    assert request.post_id == "p-1"
    assert list(request.update_mask.paths) == ["title", "visibility"]
    assert request.post.body == ""  # omitted, and not in the mask: left alone


async def test_authorization_request_id_and_client_address_are_forwarded(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    reply = await gateway.post(
        "/v1/auth/login",
        json={},
        headers={"Authorization": "Bearer tok-1", "X-Request-ID": "req-42"},
    )
    assert reply.headers["x-request-id"] == "req-42"
    _, metadata = upstream.seen["Login"]
    assert metadata["authorization"] == "Bearer tok-1"
    assert metadata["x-request-id"] == "req-42"
    assert metadata["klik-client-address"] == "127.0.0.1"
    async with httpx.AsyncClient(base_url=gateway.base_url) as anonymous:
        await anonymous.post(
            "/v1/auth/login", json={}, headers={"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
        )
    _, metadata = upstream.seen["Login"]
    # No proxy is trusted by default: the client's chain is neither believed nor passed on.
    assert metadata["klik-client-address"] == "127.0.0.1"
    assert "x-forwarded-for" not in metadata
    assert "authorization" not in metadata


# ---- service errors -------------------------------------------------------------------


async def test_insufficient_credits_is_402_with_numeric_details(
    gateway: httpx.AsyncClient,
) -> None:
    reply = await gateway.post(
        "/v1/wallet/transfers", json={"to_user_id": "u-2", "amount": 5, "idempotency_key": "k"}
    )
    assert reply.status_code == 402
    error = error_of(reply, "INSUFFICIENT_CREDITS", "FAILED_PRECONDITION")
    assert error["message"] == "need 5 credits, 3 available"
    assert error["details"] == {"required": 5, "available": 3, "wallet": "w-1"}


async def test_domain_not_found_is_404_with_its_reason(gateway: httpx.AsyncClient) -> None:
    reply = await gateway.delete("/v1/admin/users/ghost")
    assert reply.status_code == 404
    assert error_of(reply, "USER_NOT_FOUND", "NOT_FOUND")["message"] == "no user ghost"


async def test_unimplemented_rpc_is_501(gateway: httpx.AsyncClient) -> None:
    reply = await gateway.post("/v1/auth/logout", json={"refresh_token": "r"})
    assert reply.status_code == 501
    error_of(reply, "UNIMPLEMENTED", "UNIMPLEMENTED")


async def test_an_internal_failure_is_500_without_its_text(gateway: httpx.AsyncClient) -> None:
    reply = await gateway.post("/v1/auth/password", json={"current_password": "x"})
    assert reply.status_code == 500
    assert error_of(reply, "INTERNAL", "INTERNAL")["message"] == "internal error"
    assert "hunter2" not in reply.text and "SELECT" not in reply.text


async def test_retry_info_becomes_429_with_retry_after(gateway: httpx.AsyncClient) -> None:
    reply = await gateway.post("/v1/auth/refresh", json={"refresh_token": "r"})
    assert reply.status_code == 429
    assert reply.headers["retry-after"] == "3"  # 2.5 s, rounded up
    error_of(reply, "TOO_MANY_ATTEMPTS", "RESOURCE_EXHAUSTED")


async def test_a_service_that_is_down_is_503_without_addresses(
    gateway: httpx.AsyncClient,
) -> None:
    reply = await gateway.get("/v1/pricing")
    assert reply.status_code == 503
    error = error_of(reply, "UNAVAILABLE", "UNAVAILABLE")
    assert error["message"] == "the generation service is unavailable"
    assert "127.0.0.1" not in reply.text


async def test_a_call_past_its_deadline_is_504(gateway: httpx.AsyncClient) -> None:
    reply = await gateway.get("/v1/auth/me")
    assert reply.status_code == 504
    error = error_of(reply, "DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED")
    assert error["message"] == "the auth service did not answer in time"


# ---- the gateway's own refusals ------------------------------------------------------


async def test_bodies_over_the_limit_are_413_even_without_content_length(
    start_gateway: StartGateway, upstream: Upstream
) -> None:
    gateway = await start_gateway(KLIK_GATEWAY_MAX_BODY_BYTES="1024")
    padding = "x" * 2000
    declared = await gateway.post("/v1/auth/login", json={"email": padding})
    assert declared.status_code == 413
    assert error_of(declared, "BODY_TOO_LARGE", "INVALID_ARGUMENT")["details"] == {"limit": 1024}

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "'
        for _ in range(10):
            yield b"y" * 200
        yield b'"}'

    streamed = await gateway.post(
        "/v1/auth/login", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in streamed.request.headers
    assert streamed.status_code == 413
    error_of(streamed, "BODY_TOO_LARGE", "INVALID_ARGUMENT")
    assert "Login" not in upstream.seen
    small = await gateway.post("/v1/auth/login", json={"email": "a@b.c"})
    assert small.status_code == 200


async def test_a_body_that_is_not_json_is_415(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    reply = await gateway.post(
        "/v1/auth/login", content=b"email=a", headers={"Content-Type": "text/plain"}
    )
    assert reply.status_code == 415
    error_of(reply, "UNSUPPORTED_MEDIA_TYPE", "INVALID_ARGUMENT")
    assert "Login" not in upstream.seen
    # A body route with no body at all needs no Content-Type.
    assert (await gateway.post("/v1/auth/login")).status_code == 200


async def test_malformed_json_is_400_with_its_position(gateway: httpx.AsyncClient) -> None:
    reply = await gateway.post(
        "/v1/auth/login",
        content=b'{"email": "a",\n "password": }',
        headers={"Content-Type": "application/json"},
    )
    assert reply.status_code == 400
    error = error_of(reply, "MALFORMED_JSON", "INVALID_ARGUMENT")
    assert "line 2, column 14" in error["message"]
    assert error["details"] == {"line": 2, "column": 14}


async def test_a_wrong_type_is_400_naming_the_field(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    reply = await gateway.post("/v1/wallet/transfers", json={"amount": "lots"})
    assert reply.status_code == 400
    assert "amount" in error_of(reply, "INVALID_FIELD", "INVALID_ARGUMENT")["message"]
    unknown = await gateway.get("/v1/admin/users", params={"pagesize": "5"})
    assert unknown.status_code == 400
    assert "pagesize" in unknown.json()["error"]["message"]
    assert "Transfer" not in upstream.seen


async def test_unknown_route_404_and_wrong_method_405_with_allow(
    gateway: httpx.AsyncClient,
) -> None:
    missing = await gateway.get("/v1/nothing/here")
    assert missing.status_code == 404
    error_of(missing, "NOT_FOUND", "NOT_FOUND")
    wrong = await gateway.post("/v1/wallet", json={})
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET"
    error_of(wrong, "METHOD_NOT_ALLOWED", "INVALID_ARGUMENT")
    posts = await gateway.put("/v1/posts/p-1", json={})
    assert (posts.status_code, posts.headers["allow"]) == (405, "DELETE, GET, PATCH")


async def test_rate_limit_is_429_with_retry_after(
    start_gateway: StartGateway,
) -> None:
    gateway = await start_gateway(KLIK_GATEWAY_RATE_READ="2/60")
    assert [(await gateway.get("/v1/wallet")).status_code for _ in range(2)] == [200, 200]
    limited = await gateway.get("/v1/wallet")
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    error = error_of(limited, "RATE_LIMITED", "RESOURCE_EXHAUSTED")
    assert error["details"]["retry_after_seconds"] == int(limited.headers["retry-after"])
    # Another route class has its own bucket; the gateway's own routes none.
    assert (await gateway.post("/v1/auth/login", json={})).status_code == 200
    assert (await gateway.get("/healthz")).status_code == 200


async def test_cors_preflight_and_responses(start_gateway: StartGateway) -> None:
    gateway = await start_gateway(KLIK_GATEWAY_CORS_ORIGINS="https://app.example")
    origin = {"Origin": "https://app.example"}
    preflight = await gateway.options(
        "/v1/posts/p-1",
        headers={**origin, "Access-Control-Request-Method": "PATCH"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert preflight.headers["access-control-allow-methods"] == "DELETE, GET, PATCH"
    assert preflight.headers["access-control-allow-headers"] == (
        "authorization, content-type, x-request-id"
    )
    assert "Origin" in preflight.headers["vary"]
    own = await gateway.options(
        "/healthz", headers={**origin, "Access-Control-Request-Method": "GET"}
    )
    assert "GET" in own.headers["access-control-allow-methods"]

    actual = await gateway.get("/v1/wallet", headers=origin)
    assert actual.headers["access-control-allow-origin"] == "https://app.example"
    assert actual.headers["access-control-expose-headers"] == "x-request-id, retry-after"
    assert actual.headers["vary"] == "Origin"

    stranger = {"Origin": "https://evil.example"}
    refused = await gateway.options(
        "/v1/wallet", headers={**stranger, "Access-Control-Request-Method": "GET"}
    )
    assert refused.status_code == 403
    error_of(refused, "CORS_ORIGIN_NOT_ALLOWED", "PERMISSION_DENIED")
    plain = await gateway.get("/v1/wallet", headers=stranger)
    assert plain.status_code == 200
    assert "access-control-allow-origin" not in plain.headers
    assert plain.headers["vary"] == "Origin"
    unknown = await gateway.options(
        "/v1/nowhere", headers={**origin, "Access-Control-Request-Method": "GET"}
    )
    assert unknown.status_code == 404


async def test_the_api_document_and_its_page_are_served(gateway: httpx.AsyncClient) -> None:
    document = await gateway.get("/openapi.json")
    assert document.status_code == 200
    spec = document.json()
    assert spec["openapi"] == "3.1.0"
    assert spec["paths"]["/v1/wallet"]["get"]["x-grpc-method"] == (
        "/klik.wallet.v1.WalletService/GetWallet"
    )
    assert "Returns the caller's wallet" in spec["paths"]["/v1/wallet"]["get"]["description"]
    page = await gateway.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<code>/v1/wallet/transfers</code>" in page.text


async def test_metrics_label_api_requests_with_their_template(
    gateway: httpx.AsyncClient,
) -> None:
    await gateway.post("/v1/admin/users/u-secret-9/role", json={"role": "user"})
    await gateway.get("/v1/pricing")
    text = (await gateway.get("/metrics")).text
    assert 'route="/v1/admin/users/{user_id}/role",status="200"' in text
    assert 'klik_gateway_upstream_errors_total{route="/v1/pricing",status="UNAVAILABLE"}' in text
    assert "u-secret-9" not in text
