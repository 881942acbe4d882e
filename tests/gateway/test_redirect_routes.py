"""(klik.options.v1.redirect_field): a route whose RPC names a string field of its
response answers 302 to it (tests/auth/test_oidc.py follows those redirects over a
real gateway); the route is derived from the proto and the API document lists the
302 with its Location header."""

from __future__ import annotations

from gateway.openapi.document import build_openapi
from gateway.transcoding.routes import build_routes
from klik.auth.v1 import auth_pb2

AUTH = auth_pb2.DESCRIPTOR.services_by_name["AuthService"]


def test_only_the_annotated_routes_redirect() -> None:
    routes = build_routes({"auth": (AUTH,)})
    redirecting = {route.path: route.redirect_field for route in routes if route.redirect_field}
    assert redirecting == {
        "/v1/auth/oidc/{provider}/start": "redirect_url",
        "/v1/auth/oidc/{provider}/callback": "redirect_url",
    }


def test_the_document_lists_the_redirect() -> None:
    spec = build_openapi(build_routes({"auth": (AUTH,)}), {})
    start = spec["paths"]["/v1/auth/oidc/{provider}/start"]["get"]
    assert "Location" in start["responses"]["302"]["headers"]
    login = spec["paths"]["/v1/auth/login"]["post"]
    assert "302" not in login["responses"]
