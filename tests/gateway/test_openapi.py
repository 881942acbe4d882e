"""The OpenAPI 3.1 document derived from the descriptors, checked for structure (no
validator is installed): every annotated RPC with its method and path, parameters that
match the path templates, schemas as protobuf's JSON mapping writes them, the error
shape, bearer security except on the public routes; and the /docs page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from unittest.mock import ANY

import pytest

from gateway.contracts import PUBLIC_SERVICES
from gateway.openapi.comments import packaged_comments
from gateway.openapi.document import build_openapi
from gateway.openapi.page import render_page
from gateway.transcoding.routes import build_routes, http_rule
from tests.gateway.conftest import RoutesContract

Spec = dict[str, Any]
# API.md § Conventions: every route needs `Authorization: Bearer` except these (their
# RPCs are marked `(klik.options.v1.public)`).
PUBLIC_METHODS = {
    "klik.auth.v1.AuthService.Register",
    "klik.auth.v1.AuthService.Login",
    "klik.auth.v1.AuthService.Refresh",
    "klik.auth.v1.AuthService.GetJwks",
    "klik.auth.v1.AuthService.VerifyEmail",
    "klik.auth.v1.AuthService.RequestPasswordReset",
    "klik.auth.v1.AuthService.ConfirmPasswordReset",
    "klik.auth.v1.AuthService.GetUser",
    "klik.auth.v1.AuthService.StartOidc",
    "klik.auth.v1.AuthService.OidcCallback",
    "klik.auth.v1.AuthService.ExchangeOidcCode",
    "klik.auth.v1.AuthService.LinkOidcIdentity",
    "klik.auth.v1.AuthService.LoginTwoFactor",
    "klik.auth.v1.AuthService.ConfirmEmailChange",
    "klik.generation.v1.GenerationService.GetPricing",
    "klik.generation.v1.GenerationService.HeyGenWebhook",
    "klik.generation.v1.GenerationService.LeonardoWebhook",
    "klik.wallet.v1.WalletService.ListCreditPacks",
    "klik.wallet.v1.WalletService.StripeWebhook",
    "klik.wallet.v1.WalletService.ListPlans",
}
METHODS = ("get", "put", "post", "delete", "patch")
REDIRECTING = {
    "/klik.auth.v1.AuthService/StartOidc",
    "/klik.auth.v1.AuthService/OidcCallback",
}


@pytest.fixture(scope="module")
def spec() -> Spec:
    document = build_openapi(build_routes(PUBLIC_SERVICES), packaged_comments())
    # What /openapi.json serves must survive a JSON round trip unchanged.
    loaded: Spec = json.loads(json.dumps(document))
    assert loaded == document
    return loaded


@pytest.fixture(scope="module")
def test_spec(contract: RoutesContract) -> Spec:
    return build_openapi(contract.routes(), contract.comments)


def operations(spec: Spec) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def resolve(spec: Spec, ref: str) -> dict[str, Any]:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        node = node[part]
    assert isinstance(node, dict)
    return node


def refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def component(spec: Spec, name: str) -> dict[str, Any]:
    schemas: dict[str, dict[str, Any]] = spec["components"]["schemas"]
    return schemas[name]


def operation(spec: Spec, grpc_method: str, binding: int = 0) -> dict[str, Any]:
    found = [op for _, _, op in operations(spec) if op["x-grpc-method"] == grpc_method]
    return found[binding]


def test_every_annotated_rpc_of_the_four_services_appears(spec: Spec) -> None:
    assert spec["openapi"] == "3.1.0"
    expected = set()
    for services in PUBLIC_SERVICES.values():
        for service in services:
            for method in service.methods:
                rule = http_rule(method)
                if rule is None:
                    continue  # not public: no route, no operation
                for binding in (rule, *rule.additional_bindings):
                    kind = binding.WhichOneof("pattern")
                    path = re.sub(r"\{([^}=]+)(=[^}]*)?\}", r"{\1}", getattr(binding, kind))
                    expected.add((kind, path, f"/{service.full_name}/{method.name}"))
    found = {(method, path, op["x-grpc-method"]) for path, method, op in operations(spec)}
    assert found == expected
    assert len(found) >= 37  # every row of API.md's route tables
    ids = [op["operationId"] for _, _, op in operations(spec)]
    assert len(ids) == len(set(ids))


def test_every_reference_resolves(spec: Spec, test_spec: Spec) -> None:
    for document in (spec, test_spec):
        for ref in set(refs(document)):
            assert resolve(document, ref) is not None


def test_path_parameters_match_the_templates(spec: Spec, test_spec: Spec) -> None:
    for document in (spec, test_spec):
        for path, _, op in operations(document):
            in_path = set(re.findall(r"\{([^}]+)\}", path))
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert in_path == declared, path
            assert all(p["required"] for p in op.get("parameters", []) if p["in"] == "path")


def test_public_routes_need_no_token_and_all_others_a_bearer_token(
    spec: Spec, test_spec: Spec
) -> None:
    assert spec["security"] == [{"bearer": []}]
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    public = set()
    for _, _, op in operations(spec):
        if op.get("security") == []:
            public.add(op["x-grpc-method"].lstrip("/").replace("/", "."))
        else:
            assert "security" not in op
    assert public == PUBLIC_METHODS
    # register, login, refresh, jwks, pricing (API.md); credit packs, Stripe's webhook;
    # email verification, password reset; public profiles; HeyGen's and Leonardo's
    # webhooks; social sign-in; the second step of a two-factor login; the mailed link
    # of a change of email
    assert len(public) == 20
    for _, _, op in operations(test_spec):  # no RouteTest RPC is marked public
        assert "security" not in op


def test_every_operation_answers_errors_in_the_error_shape(spec: Spec) -> None:
    for _, _, op in operations(spec):
        assert op["responses"]["default"] == {"$ref": "#/components/responses/Error"}
        content = op["responses"]["200"]["content"]
        # Server-streaming RPCs answer Server-Sent Events; everything else JSON.
        assert ("application/json" in content) != ("text/event-stream" in content)
    streaming = [
        op["operationId"]
        for _, _, op in operations(spec)
        if "text/event-stream" in op["responses"]["200"]["content"]
    ]
    assert sorted(streaming) == [
        "ContentService_StreamMessage",
        "GenerationService_StreamJob",
        "GenerationService_WatchJob",
    ]
    error = component(spec, "Error")["properties"]["error"]
    assert set(error["required"]) == {"code", "status", "message", "details", "request_id"}
    assert "FAILED_PRECONDITION" in error["properties"]["status"]["enum"]
    headers = spec["components"]["responses"]["Error"]["headers"]
    assert "Retry-After" in headers


def test_the_rpcs_that_may_lack_credits_document_402(spec: Spec) -> None:
    """Every RPC whose contract gives INSUFFICIENT_CREDITS its HTTP status lists a 402
    response in the error shape; no other operation has a status besides 200 (but
    the 302 of a redirect route, the 413 of an upload too large)."""
    paying = {
        "/klik.wallet.v1.WalletService/Transfer",
        "/klik.wallet.v1.WalletService/DebitCredits",
        "/klik.generation.v1.GenerationService/CreateJob",
        "/klik.generation.v1.GenerationService/StreamJob",
        "/klik.content.v1.ContentService/SendMessage",
        "/klik.content.v1.ContentService/StreamMessage",
        "/klik.content.v1.ContentService/CreateLesson",
    }
    for _, _, op in operations(spec):
        if op["x-grpc-method"] in paying:
            assert set(op["responses"]) == {"200", "402", "default"}
            payment = op["responses"]["402"]
            assert "INSUFFICIENT_CREDITS" in payment["description"]
            schema = payment["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}
        elif op["x-grpc-method"] in REDIRECTING:  # (klik.options.v1.redirect_field)
            assert set(op["responses"]) == {"200", "302", "default"}
        elif op["x-grpc-method"] == "/klik.content.v1.ContentService/CreateUpload":
            assert set(op["responses"]) == {"200", "413", "default"}
            assert "UPLOAD_TOO_LARGE" in op["responses"]["413"]["description"]
        else:
            assert set(op["responses"]) == {"200", "default"}, op["x-grpc-method"]


def test_descriptions_come_from_the_proto_comments(spec: Spec) -> None:
    transfer = operation(spec, "/klik.wallet.v1.WalletService/Transfer")
    assert transfer["summary"].startswith("Moves credits from the caller's wallet")
    assert "INSUFFICIENT_CREDITS" in transfer["description"]
    tags = {tag["name"]: tag for tag in spec["tags"]}
    assert set(tags) == {"AuthService", "WalletService", "GenerationService", "ContentService"}
    assert "credit wallet" in tags["WalletService"]["description"]
    wallet = component(spec, "klik.wallet.v1.Wallet")
    assert "balance" in wallet["properties"]["available"]["description"]
    assert all("description" in op for _, _, op in operations(spec))


def test_schemas_follow_the_protobuf_json_mapping(spec: Spec) -> None:
    wallet = component(spec, "klik.wallet.v1.Wallet")["properties"]
    assert wallet["balance"]["type"] == "string" and wallet["balance"]["format"] == "int64"
    assert wallet["updated_at"]["format"] == "date-time"
    assert wallet["user_id"]["type"] == "string"
    assert component(spec, "klik.wallet.v1.Wallet")["additionalProperties"] is False
    users = component(spec, "klik.auth.v1.ListUsersResponse")["properties"]["users"]
    assert users["type"] == "array"
    assert users["items"] == {"$ref": "#/components/schemas/klik.auth.v1.User"}
    login = component(spec, "klik.auth.v1.LoginResponse")["properties"]
    assert login["expires_in"]["type"] == "integer"
    usage = component(spec, "klik.generation.v1.Usage")["properties"]
    assert usage["video_seconds"]["type"] == "number"
    # Every message of the four files has a component, routed or not.
    assert "klik.generation.v1.ChatTurn" in spec["components"]["schemas"]
    assert "klik.auth.v1.GetMeRequest" in spec["components"]["schemas"]


def test_response_body_and_body_fields_shape_the_operation(spec: Spec) -> None:
    register = operation(spec, "/klik.auth.v1.AuthService/Register")
    schema = register["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"] == "#/components/schemas/klik.auth.v1.User"  # response_body: user
    body = register["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/klik.auth.v1.RegisterRequest"}
    update = operation(spec, "/klik.content.v1.ContentService/UpdatePost")
    body = update["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"] == "#/components/schemas/klik.content.v1.Post"  # body: post
    assert update["requestBody"]["required"] is True
    query = {p["name"]: p for p in update["parameters"] if p["in"] == "query"}
    assert set(query) == {"update_mask"} and query["update_mask"]["schema"]["type"] == "string"


def test_body_star_with_path_variables_leaves_them_out_of_the_body(spec: Spec) -> None:
    set_role = operation(spec, "/klik.auth.v1.AuthService/SetRole")
    body = set_role["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"role"}
    assert set_role["requestBody"]["required"] is False
    assert "parameters" in set_role
    assert [p["name"] for p in set_role["parameters"]] == ["user_id"]


def test_routes_without_a_body_take_their_fields_as_query_parameters(spec: Spec) -> None:
    list_jobs = operation(spec, "/klik.generation.v1.GenerationService/ListJobs")
    query = {p["name"]: p for p in list_jobs["parameters"]}
    assert set(query) == {"page_size", "page_token", "status"}
    assert query["page_size"]["schema"] == {"type": "integer", "format": "int32"}
    assert "default 20" in query["page_size"]["description"]
    assert "requestBody" not in list_jobs


def test_the_test_proto_covers_every_schema_form(test_spec: Spec) -> None:
    thing = component(test_spec, "gatewaytest.v1.Thing")["properties"]
    assert thing["color"]["$ref"] == "#/components/schemas/gatewaytest.v1.Color"
    assert component(test_spec, "gatewaytest.v1.Color")["enum"] == [
        "COLOR_UNSPECIFIED",
        "COLOR_RED",
        "COLOR_BLUE",
    ]
    assert thing["tags"]["type"] == "array" and thing["tags"]["items"]["type"] == "string"
    assert thing["labels"]["type"] == "object"
    assert thing["labels"]["additionalProperties"]["type"] == "string"
    assert thing["limit"] == {
        "type": "integer",
        "format": "int32",
        "description": "An optional limit.",
    }
    assert thing["ttl"]["type"] == "string" and "pattern" in thing["ttl"]
    assert thing["count"]["format"] == "uint64" and thing["count"]["type"] == "string"
    assert thing["blob"]["format"] == "byte"
    counts = component(test_spec, "gatewaytest.v1.ListThingsResponse")["properties"]["counts"]
    assert counts["additionalProperties"]["format"] == "int64"


def test_the_test_proto_parameters(test_spec: Spec) -> None:
    book = test_spec["paths"]["/v1/{name}"]["get"]
    (name,) = book["parameters"]
    assert name["schema"]["pattern"] == "^shelves/[^/]+/books/[^/]+$"
    files = test_spec["paths"]["/v1/files/{path}"]["get"]
    assert files["parameters"][0]["schema"]["pattern"] == "^.*$"
    listing = test_spec["paths"]["/v1/things"]["get"]
    query = {p["name"]: p for p in listing["parameters"]}
    assert {"filter.color", "filter.min_size", "created_after", "fields", "limit"} <= set(query)
    assert "extra" not in query  # maps cannot be set from the query
    assert query["tags"]["style"] == "form" and query["tags"]["explode"] is True
    assert query["created_after"]["schema"]["format"] == "date-time"
    search = test_spec["paths"]["/v1/things:search"]["post"]
    assert "parameters" not in search  # body "*": every field is in the body
    label = test_spec["paths"]["/v1/things/{thing_id}/label"]["get"]
    schema = label["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"] == "#/components/schemas/gatewaytest.v1.Label"
    profile = test_spec["paths"]["/v1/users/{user.id}/profile"]["get"]
    names = [p["name"] for p in profile["parameters"]]
    assert names == ["user.id", "user.name", "verbose"]


def test_the_docs_page_renders_every_operation_without_scripts(spec: Spec) -> None:
    page = render_page(spec)
    assert page.startswith("<!doctype html>")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    for path, method, op in operations(spec):
        assert f"<code>{path}</code>" in page
        assert f"id='{op['operationId']}'" in page
        assert f">{method.upper()}</span>" in page
    assert "id='schema-klik.wallet.v1.Wallet'" in page
    assert "Public" in page and "Bearer token" in page
    hostile = {**spec, "info": {**spec["info"], "title": "<script>alert(1)</script>"}}
    assert "<script>alert" not in render_page(hostile)


def test_field_behavior_marks_fields_required_and_read_only(spec: Spec, test_spec: Spec) -> None:
    """`google.api.field_behavior` in the protos: REQUIRED -> `required`, OUTPUT_ONLY
    -> `readOnly`."""
    thing = component(test_spec, "gatewaytest.v1.Thing")
    assert thing["required"] == ["name"]
    assert thing["properties"]["id"]["readOnly"] is True
    assert "readOnly" not in thing["properties"]["name"]
    login = component(spec, "klik.auth.v1.LoginRequest")
    assert login["required"] == ["email", "password"]
    transfer = component(spec, "klik.wallet.v1.TransferRequest")
    assert transfer["required"] == ["to_user_id", "amount", "idempotency_key"]
    user = component(spec, "klik.auth.v1.User")
    assert "required" not in user
    assert user["properties"]["id"]["readOnly"] is True
    assert user["properties"]["created_at"]["readOnly"] is True
    post = component(spec, "klik.content.v1.Post")["properties"]
    assert {name for name, field in post.items() if field.get("readOnly")} == {
        "id",
        "author_id",
        "status",
        "created_at",
        "updated_at",
        "author",
        "like_count",
        "comment_count",
        "liked_by_me",
        "assets",
    }
    # A body route with its id in the path: the id is left out of the body, and so
    # out of what it requires.
    body = operation(spec, "/klik.content.v1.ContentService/SendMessage")["requestBody"]
    assert body["content"]["application/json"]["schema"]["required"] == ["content"]


def test_a_streaming_rpc_is_an_event_stream_listing_its_events(test_spec: Spec) -> None:
    watch = test_spec["paths"]["/v1/things/{thing_id}:watch"]["get"]
    ok = watch["responses"]["200"]
    assert list(ok["content"]) == ["text/event-stream"]
    # Each event of the oneof with the schema of its data:, and the final error.
    assert ok["x-sse-events"] == {
        "thing": {"$ref": "#/components/schemas/gatewaytest.v1.Thing", "description": ANY},
        "label": {"$ref": "#/components/schemas/gatewaytest.v1.Label", "description": ANY},
        "note": {"type": "string", "description": ANY},
        "count": {"type": "string", "format": "int64", "pattern": "^-?[0-9]+$", "description": ANY},
        "error": {"$ref": "#/components/schemas/Error"},
    }
    for ref in ("gatewaytest.v1.Thing", "gatewaytest.v1.Label"):
        assert ref in test_spec["components"]["schemas"]
    text = ok["description"]
    assert "`thing`: `gatewaytest.v1.Thing`" in text and "`note`: a JSON string" in text
    assert "`event_id`" in text and "event: error" in text and "TOKEN_EXPIRED" in text
    parameters = {(p["in"], p["name"]) for p in watch["parameters"]}
    assert {("path", "thing_id"), ("query", "access_token"), ("header", "Last-Event-ID")} <= (
        parameters
    )
    # No oneof, no event_id, no last_event_id: every event is `message`; POST body kept.
    stream = test_spec["paths"]["/v1/things/{thing_id}:stream"]["post"]
    events = stream["responses"]["200"]["x-sse-events"]
    assert events["message"] == {"$ref": "#/components/schemas/gatewaytest.v1.Thing"}
    assert set(events) == {"message", "error"}
    assert "`event_id`" not in stream["responses"]["200"]["description"]
    assert "Last-Event-ID" not in {p["name"] for p in stream["parameters"]}
    assert "requestBody" in stream
    # A unary route keeps its JSON answer and takes no token in the query.
    get = test_spec["paths"]["/v1/things/{thing_id}"]["get"]
    assert list(get["responses"]["200"]["content"]) == ["application/json"]
    assert "access_token" not in {p["name"] for p in get.get("parameters", [])}
