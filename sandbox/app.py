"""The sandbox as one Starlette app: the routes of every system it imitates, the
result files they point at, and its control endpoints. Each system is a module with
its `ROUTES`; imitating one more system is one more module and one more line here."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from sandbox import anthropic, control, files, heygen, leonardo, llm, mail, oidc, stripe
from sandbox.serving import Sandbox

ROUTES: list[BaseRoute] = [
    *llm.ROUTES,  # OpenAI-compatible chat completions
    *anthropic.ROUTES,  # Anthropic's Messages API
    *leonardo.ROUTES,  # Leonardo images
    *heygen.ROUTES,  # HeyGen avatar videos
    *stripe.ROUTES,  # Stripe: customers, Checkout, subscriptions, refunds, webhooks
    *files.ROUTES,  # the images and videos their results point at
    *mail.ROUTES,  # /_sandbox/mail: what the SMTP sink received
    *oidc.ROUTES,  # an OpenID provider (issuer {sandbox}/oidc) and /_sandbox/oidc
    *control.ROUTES,  # /_sandbox/: health, request log, global faults, stream log
]


def create_app(sandbox: Sandbox | None = None) -> Starlette:
    """The sandbox as an ASGI app; pass a `Sandbox` to inspect its state in-process."""
    app = Starlette(routes=ROUTES)
    app.state.sandbox = sandbox or Sandbox()
    return app
