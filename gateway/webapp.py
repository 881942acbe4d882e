"""klik studio, the web app (`web/`), served by the gateway at `/`.

The built app (`web/dist`, or `KLIK_GATEWAY_WEB_DIR`) is static files: the hashed
bundles under `static/` are cached for a year (their names change when they do),
`index.html` and the other files are revalidated on every load. A GET of one of the
app's own client routes (the sections listed in its `routes.json`, e.g. `/studio` or
`/posts/abc`) answers `index.html`, and the app's router takes it from there. Every
other request — the API under `/v1/`, the gateway's own routes, unknown paths, and
everything when the app is not built — goes on to the API as before."""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import FileResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "web" / "dist"
HASHED_DIR = "static"  # Vite's build.assetsDir: file names carry a content hash
CACHE_FOREVER = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
API_PREFIXES = ("/v1/", "/v1")


def web_root(env: dict[str, str] | None = None) -> Path:
    value = (os.environ if env is None else env).get("KLIK_GATEWAY_WEB_DIR", "")
    return Path(value) if value else DEFAULT_ROOT


class WebApp:
    """An ASGI app answering the studio's files and client routes, else `api`."""

    def __init__(self, api: ASGIApp, root: Path) -> None:
        self.api = api
        self.root = root.resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            response = self.response_for(scope["path"])
            if response is not None:
                await response(scope, receive, send)
                return
        await self.api(scope, receive, send)

    def response_for(self, path: str) -> Response | None:
        index = self.root / "index.html"
        if path.startswith(API_PREFIXES) or not index.is_file():
            return None
        file = self._file(path)
        if file is None:
            if path == "/" or self._is_client_route(path):
                return FileResponse(index, headers={"Cache-Control": REVALIDATE})
            return None
        hashed = file.parent == self.root / HASHED_DIR
        return FileResponse(
            file,
            headers={
                "Cache-Control": CACHE_FOREVER if hashed else REVALIDATE,
                "X-Content-Type-Options": "nosniff",
            },
        )

    def _file(self, path: str) -> Path | None:
        """The built file at `path`, if it is one inside the root."""
        relative = path.lstrip("/")
        candidate = (self.root / relative).resolve()
        if not relative or not candidate.is_relative_to(self.root) or not candidate.is_file():
            return None
        return candidate

    def _is_client_route(self, path: str) -> bool:
        section = path.strip("/").split("/", 1)[0]
        return section in self._sections()

    def _sections(self) -> frozenset[str]:
        try:
            listed = json.loads((self.root / "routes.json").read_text())
        except (OSError, ValueError):
            return frozenset()
        return frozenset(s for s in listed if isinstance(s, str) and s)


def install_webapp(app: Starlette, root: Path | None = None) -> None:
    """Put the studio in front of whatever `app` answers for unmatched routes."""
    app.router.default = WebApp(app.router.default, root or web_root())
