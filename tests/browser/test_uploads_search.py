"""klik studio's upload, search, assistant and lesson pages in a real browser against
the whole stack started the README's way (`python -m stack` on free ports):
tests/browser/uploads_search.mjs drives headless Chromium: a PNG uploaded in the post
composer (its signed PUT straight to the gateway) is attached, the post published and
its image drawn in the feed, then the post is found on the Search page by a word of
its body; the upload is listed on the Assets page; on the Account page a new upload
becomes the profile picture, then the composer's upload, then none; a public
assistant is created and a chat started with it and renamed, and the assistant
edited; a lesson is written, edited, published, found in the catalogue (and not under
another type), copied, unpublished and deleted. A screenshot of each page is saved under
test-artifacts/uploads-search/ (gitignored)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.browser.test_studio import CHROMIUM, ROOT
from tests.gateway.stack import running_stack

pytestmark = pytest.mark.slow

SCRIPT = ROOT / "tests" / "browser" / "uploads_search.mjs"
ARTIFACTS = ROOT / "test-artifacts" / "uploads-search"
SHOTS = [
    "01-composer-upload",
    "02-feed-upload",
    "03-search",
    "04-assets-uploads",
    "04b-account-picture",
    "05-assistants",
    "06-chat-renamed",
    "07-lessons-catalogue",
    "07b-lessons-mine",
    "08-search-phone",
]


def test_uploads_and_search_in_a_browser(tmp_path_factory: pytest.TempPathFactory) -> None:
    assert shutil.which("node"), "node is needed for the browser tests"
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    # The app the gateway serves: built when stale (the Makefile's rule, as `make run`).
    subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True, timeout=600)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    with running_stack(tmp_path_factory.mktemp("uploads-search")) as stack:
        run = subprocess.run(
            ["node", str(SCRIPT), stack.url, str(ARTIFACTS)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "CHROMIUM": CHROMIUM},
        )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "every step passed" in run.stdout
    print(run.stdout)
    print(f"uploads and search screenshots: {ARTIFACTS}")
    for shot in SHOTS:
        assert (ARTIFACTS / f"{shot}.png").stat().st_size > 0, shot
