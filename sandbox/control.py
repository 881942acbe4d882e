"""The sandbox's own endpoints, for tests and operators; they take no faults and are
not recorded.

    GET  /_sandbox/health                      200 while it serves
    GET  /_sandbox/requests[?path=prefix]      what reached it: time, method, path, status,
                                               and its JSON body (`json`, null if none)
    DELETE /_sandbox/requests                  forget them
    GET|POST|DELETE /_sandbox/faults           global faults: {"fault": spec, "path": prefix}
    GET  /_sandbox/streams[?path=prefix]       the recent streamed replies: id, model,
                                               tokens sent, how each ended (streaming.py)
    DELETE /_sandbox/streams                   forget them
    GET|POST|DELETE /_sandbox/webhooks         where jobs call back when they end:
                                               {"provider", "url", "secret"}; GET also
                                               lists the calls made (webhooks.py)"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import serving
from sandbox.webhooks import PROVIDERS, Receiver


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def requests(request: Request) -> Response:
    sandbox = serving.of(request)
    return _log(
        request,
        "requests",
        lambda prefix: [r for r in sandbox.requests if r["path"].startswith(prefix)],
        sandbox.requests.clear,
    )


async def streams(request: Request) -> Response:
    sandbox = serving.of(request)
    return _log(request, "streams", sandbox.streams.listed, sandbox.streams.clear)


def _log(
    request: Request,
    name: str,
    listed: Callable[[str], list[dict[str, Any]]],
    clear: Callable[[], None],
) -> Response:
    """A log endpoint: GET lists its entries under `?path=prefix`, DELETE clears."""
    if request.method == "DELETE":
        clear()
        return Response(status_code=204)
    return JSONResponse({name: listed(request.query_params.get("path", ""))})


async def faults(request: Request) -> Response:
    sandbox = serving.of(request)
    if request.method == "DELETE":
        sandbox.clear_faults()
        return Response(status_code=204)
    if request.method == "POST":
        try:
            data = json.loads(await request.body())
            spec, path = data["fault"], data.get("path", "")
            if not isinstance(spec, str) or not isinstance(path, str):
                raise TypeError("fault and path must be strings")
            added = sandbox.add_fault(spec, path)
        except (ValueError, KeyError, TypeError) as error:
            return JSONResponse({"error": f"bad fault: {error}"}, 400)
        return JSONResponse(added.public(), 201)
    return JSONResponse({"faults": [f.public() for f in sandbox.faults]})


async def webhooks(request: Request) -> Response:
    hooks = serving.of(request).webhooks
    if request.method == "DELETE":
        hooks.receivers.clear()
        hooks.delivered.clear()
        return Response(status_code=204)
    if request.method == "POST":
        try:
            data = json.loads(await request.body())
            provider, url, secret = data["provider"], data["url"], data.get("secret", "")
            if provider not in PROVIDERS or not all(isinstance(v, str) for v in (url, secret)):
                raise ValueError(f"provider must be one of {PROVIDERS}; url, secret strings")
        except (ValueError, KeyError, TypeError) as error:
            return JSONResponse({"error": f"bad webhook: {error}"}, 400)
        hooks.receivers[provider] = Receiver(url, secret)
        return JSONResponse({"provider": provider, "url": url}, 201)
    return JSONResponse(
        {
            "receivers": {name: r.url for name, r in hooks.receivers.items()},
            "delivered": hooks.delivered,
        }
    )


ROUTES = [
    Route("/_sandbox/health", health, methods=["GET"]),
    Route("/_sandbox/requests", requests, methods=["GET", "DELETE"]),
    Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
    Route("/_sandbox/streams", streams, methods=["GET", "DELETE"]),
    Route("/_sandbox/webhooks", webhooks, methods=["GET", "POST", "DELETE"]),
]
