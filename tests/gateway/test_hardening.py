"""What the abuse drills (issue 17) found at the gateway: oversized headers and path
parameters, transport errors' text, bodies without a Content-Type, 405 bodies and
`/v1/files/.`."""

from __future__ import annotations

import grpc
import httpx
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from gateway.transcoding.status import rpc_failure
from kit.errors import STATUS_DETAILS_KEY
from klik.content.v1 import content_pb2
from tests.gateway.fakes import Upstream, error_of


async def test_too_many_or_too_large_headers_are_431_before_any_call(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    many = {f"x-filler-{n}": "1" for n in range(150)}
    huge_forwarded = {
        "X-Forwarded-For": ", ".join(f"10.9.{n // 250}.{n % 250}" for n in range(10_000))
    }
    for headers in (many, huge_forwarded, {"Authorization": "Bearer " + "a" * 5000}):
        reply = await gateway.post("/v1/auth/login", json={}, headers=headers)
        assert reply.status_code == 431, headers.keys()
        error_of(reply, "HEADERS_TOO_LARGE", "INVALID_ARGUMENT")
    assert "Login" not in upstream.seen
    fine = await gateway.post("/v1/auth/login", json={}, headers={"X-Forwarded-For": "10.9.0.1"})
    assert fine.status_code == 200


async def test_a_path_parameter_over_its_limit_is_400_before_any_call(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    reply = await gateway.patch("/v1/posts/" + "p" * 10_000, json={"title": "t"})
    assert reply.status_code == 400
    assert "post_id" in error_of(reply, "INVALID_FIELD", "INVALID_ARGUMENT")["message"]
    assert "UpdatePost" not in upstream.seen


async def test_a_path_parameter_is_bounded_by_its_own_fields_limit(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    """(klik.options.v1.max_length): a post id is a UUID, 36 characters."""
    uuid_like = "0" * 36
    reply = await gateway.patch("/v1/posts/" + uuid_like + "0", json={"title": "t"})
    assert reply.status_code == 400
    message = error_of(reply, "INVALID_FIELD", "INVALID_ARGUMENT")["message"]
    assert "post_id" in message and "36" in message
    assert "UpdatePost" not in upstream.seen
    await gateway.patch("/v1/posts/" + uuid_like, json={"title": "t"})
    request, _ = upstream.seen["UpdatePost"]
    assert isinstance(request, content_pb2.UpdatePostRequest)
    assert request.post_id == uuid_like, "within the limit: passed on"
    document = (await gateway.get("/openapi.json")).json()
    parameters = document["paths"]["/v1/posts/{post_id}"]["patch"]["parameters"]
    [post_id] = [p for p in parameters if p["in"] == "path"]
    assert post_id["schema"]["maxLength"] == 36


def test_a_transport_error_never_reaches_the_client_in_its_text() -> None:
    """gRPC failed the call itself (the reply's metadata over its size limit) while
    the servicer's NOT_FOUND details were still attached: the client gets neither
    the transport's text nor a reason that does not go with the status."""
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason="JOB_NOT_FOUND", metadata={"job_id": "j"}))
    servicer_said = status_pb2.Status(
        code=grpc.StatusCode.NOT_FOUND.value[0], message="no job j", details=[info]
    )
    trailing = grpc.aio.Metadata((STATUS_DETAILS_KEY, servicer_said.SerializeToString()))
    transport = "received metadata size exceeds soft limit (10431 vs. 8192)"
    failed = grpc.aio.AioRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.aio.Metadata(), trailing, transport
    )
    error = rpc_failure(failed, "generation", {})
    assert (error.status, error.code) == ("RESOURCE_EXHAUSTED", None)
    assert "metadata" not in error.message and "8192" not in error.message
    # The servicer's own refusal still passes with the servicer's own message.
    refused = grpc.aio.AioRpcError(
        grpc.StatusCode.NOT_FOUND, grpc.aio.Metadata(), trailing, "no job j"
    )
    error = rpc_failure(refused, "generation", {})
    assert (error.status, error.code, error.message) == ("NOT_FOUND", "JOB_NOT_FOUND", "no job j")


async def test_a_body_without_content_type_is_415(
    gateway: httpx.AsyncClient, upstream: Upstream
) -> None:
    reply = await gateway.post("/v1/auth/login", content=b'{"email": "a@b.c"}')
    assert "content-type" not in reply.request.headers
    assert reply.status_code == 415
    error_of(reply, "UNSUPPORTED_MEDIA_TYPE", "INVALID_ARGUMENT")
    assert "Login" not in upstream.seen


async def test_405_bodies_and_the_files_root(gateway: httpx.AsyncClient) -> None:
    wrong = await gateway.delete("/v1/generations/j-1:cancel")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "POST"
    error_of(wrong, "METHOD_NOT_ALLOWED", "INVALID_ARGUMENT")
    own = await gateway.post("/healthz")
    assert (own.status_code, own.headers["allow"]) == (405, "GET, HEAD")
    error_of(own, "METHOD_NOT_ALLOWED", "INVALID_ARGUMENT")
    # Clients shorten `/v1/files/.` to `/v1/files`: a 404 in the error shape, not a bare 307.
    for path in ("/v1/files", "/v1/files/."):
        root = await gateway.get(path, follow_redirects=False)
        assert root.status_code == 404, path
        error_of(root, "NOT_FOUND", "NOT_FOUND")
