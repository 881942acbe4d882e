"""klik studio's operator pages in a real browser against the whole stack started the
README's way (`python -m stack` on free ports, one admin named in KLIK_ADMIN_EMAILS):
tests/browser/operator.mjs sets up a charged job, a published post and its report over
the public API, then drives headless Chromium: the author sees their usage chart on the
Wallet page; the admin signs in, sees the dashboard's charts non-empty, searches the
users, opens a user's wallet, hides the reported post from the report queue (it leaves
the feed) and sees the providers' circuits. A screenshot of each page is saved under
test-artifacts/operator/ (gitignored; the test prints the directory)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.browser.test_studio import CHROMIUM, ROOT
from tests.gateway.stack import running_stack

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "tests" / "browser" / "operator.mjs"
ARTIFACTS = ROOT / "test-artifacts" / "operator"
ADMIN = "operator-admin@example.com"
SHOTS = [
    "00-wallet-usage",
    "01-dashboard",
    "02-users",
    "03-user-wallet",
    "04-reports",
    "05-report-hidden",
    "06-providers",
    "07-dashboard-phone",
]


def test_the_operator_pages_in_a_browser(tmp_path_factory: pytest.TempPathFactory) -> None:
    assert shutil.which("node"), "node is needed for the browser tests"
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    # The app the gateway serves: built when stale (the Makefile's rule, as `make run`).
    subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True, timeout=600)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    with running_stack(tmp_path_factory.mktemp("operator"), KLIK_ADMIN_EMAILS=ADMIN) as stack:
        run = subprocess.run(
            ["node", str(SCRIPT), stack.url, str(ARTIFACTS), ADMIN],
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "CHROMIUM": CHROMIUM},
        )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "every step passed" in run.stdout
    print(f"operator page screenshots: {ARTIFACTS}")
    for shot in SHOTS:
        assert (ARTIFACTS / f"{shot}.png").stat().st_size > 0, shot
