"""The gateway serves klik studio's built files (gateway/webapp.py): index.html for
the app's client routes and revalidated, hashed bundles cached for a year, and
everything else — the API, unknown paths, other methods — left to the API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.app import create_app
from gateway.settings import GatewaySettings
from gateway.webapp import CACHE_FOREVER, WebApp, install_webapp


async def api(scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"api": scope["path"]}, status_code=404)(scope, receive, send)


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "static").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><title>klik studio</title>")
    (tmp_path / "static" / "index-AbC123.js").write_text("console.log('hi')")
    (tmp_path / "routes.json").write_text(json.dumps(["studio", "chats", "assets"]))
    (tmp_path.parent / "secret.txt").write_text("no")
    return tmp_path


def client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")  # type: ignore[arg-type]


async def test_client_routes_get_index_html_revalidated(dist: Path) -> None:
    async with client(WebApp(api, dist)) as http:
        for path in ("/", "/studio", "/chats/42", "/assets"):
            reply = await http.get(path)
            assert reply.status_code == 200, path
            assert "klik studio" in reply.text
            assert reply.headers["cache-control"] == "no-cache"
            assert reply.headers["content-type"].startswith("text/html")


async def test_hashed_bundles_are_cached_for_a_year(dist: Path) -> None:
    async with client(WebApp(api, dist)) as http:
        bundle = await http.get("/static/index-AbC123.js")
        assert bundle.status_code == 200 and bundle.text == "console.log('hi')"
        assert bundle.headers["cache-control"] == CACHE_FOREVER
        listed = await http.get("/routes.json")
        assert listed.headers["cache-control"] == "no-cache"
        head = await http.head("/static/index-AbC123.js")
        assert head.status_code == 200 and head.content == b""


async def test_everything_else_goes_to_the_api(dist: Path) -> None:
    async with client(WebApp(api, dist)) as http:
        for path in ("/nope", "/v1/wallet", "/v1", "/static/missing.js", "/../secret.txt"):
            reply = await http.get(path)
            assert reply.status_code == 404, path
            assert "api" in reply.json(), path
        posted = await http.post("/studio")
        assert posted.json() == {"api": "/studio"}


async def test_without_a_build_the_api_answers_everything(tmp_path: Path) -> None:
    async with client(WebApp(api, tmp_path / "missing")) as http:
        assert (await http.get("/")).json() == {"api": "/"}


async def test_install_puts_the_studio_in_front_of_the_default(dist: Path) -> None:
    app = Starlette(routes=[Route("/healthz", lambda r: JSONResponse({"ok": True}))])
    app.router.default = api
    install_webapp(app, dist)
    async with client(app) as http:
        assert (await http.get("/healthz")).json() == {"ok": True}
        assert "klik studio" in (await http.get("/studio")).text
        assert (await http.get("/v1/x")).json() == {"api": "/v1/x"}


async def test_the_gateway_serves_the_studio_from_its_web_dir(
    dist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLIK_GATEWAY_WEB_DIR", str(dist))
    app = create_app(GatewaySettings.from_env({}))
    async with client(app) as http:
        page = await http.get("/studio")
        assert page.status_code == 200 and "klik studio" in page.text
        assert (await http.get("/static/index-AbC123.js")).headers["cache-control"] == (
            CACHE_FOREVER
        )
        missing = await http.get("/nope")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "NOT_FOUND"
        assert (await http.get("/openapi.json")).json()["openapi"] == "3.1.0"
