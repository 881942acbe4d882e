"""klik studio in a real browser against the whole stack started the README's way
(`python -m stack` on free ports, with the stack's default settings: the signup bonus
and paid work wait for a verified email): tests/browser/studio.mjs drives headless
Chromium through sign up → the verification mail from the sandbox's sink → its link →
balance → buying a credit pack on the Stripe sandbox's checkout page → subscribing
to a plan there (active, its allowance in the wallet) → the price estimate → image →
streamed text → a streamed chat reply, one stopped half-way, one whose cut stream is
resumed → post → feed → a second user's comment and its author's live notification →
a password reset by mail, and saves a screenshot of each page under
test-artifacts/browser/ (gitignored)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway.stack import RunningStack, running_stack
from tests.helpers import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "browser" / "studio.mjs"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOTS = [
    "01-signup",
    "01b-unverified",
    "01c-verified",
    "02-wallet",
    "02b-checkout",
    "02c-bought",
    "02d-subscribed",
    "03a-studio-estimate",
    "03-studio",
    "04-chat",
    "04b-chat-stopped",
    "05-posts",
    "06-feed",
    "06c-second-user-comment",
    "06d-notified",
    "06b-feed-phone",
    "02e-wallet-phone",
    "03b-studio-phone",
    "07a-password-reset",
    "07-login-error",
]


@pytest.fixture(scope="module")
def studio_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    # The app the gateway serves: built when stale (the Makefile's rule, as `make run`).
    subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True, timeout=600)
    # The defaults a newcomer gets (tests/gateway/stack.py turns them off for the
    # other stack tests; here they are set back to what `python -m stack` uses),
    # and Stripe Checkout allowed to return to the app's own origin.
    port = free_port()
    with running_stack(
        tmp_path_factory.mktemp("studio"),
        KLIK_SIGNUP_BONUS_ON="verified",
        KLIK_REQUIRE_VERIFIED_EMAIL="1",
        KLIK_GATEWAY_PORT=str(port),
        KLIK_CHECKOUT_RETURN_ORIGINS=f"http://127.0.0.1:{port}",
    ) as stack:
        yield stack


def sandbox_url(stack: RunningStack) -> str:
    """Where the stack's sandbox (and its mail sink, GET /_sandbox/mail) listens."""
    return f"http://127.0.0.1:{stack.env['KLIK_SANDBOX_PORT']}"


def test_the_studio_flow_in_a_browser(studio_stack: RunningStack) -> None:
    assert shutil.which("node"), "node is needed for the browser tests"
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    run = subprocess.run(
        ["node", str(SCRIPT), studio_stack.url, str(ARTIFACTS), sandbox_url(studio_stack)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "every step passed" in run.stdout
    print(run.stdout)  # with each step's time (pytest -s shows it)
    for shot in SHOTS:
        assert (ARTIFACTS / f"{shot}.png").stat().st_size > 0, shot
