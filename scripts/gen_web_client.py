"""Write the gateway's OpenAPI document to ``web/openapi.json`` and regenerate the
TypeScript types of klik studio's API client from it (``web/src/api/schema.d.ts``).

The document is built exactly as the gateway builds the one it serves at
``/openapi.json`` (from the packaged descriptors and their comments), without starting
anything. The types come from ``openapi-typescript`` in ``web/node_modules`` (``npm ci``
in ``web/`` first; ``make web-client`` does it).

    python scripts/gen_web_client.py           # rewrite both files
    python scripts/gen_web_client.py --check   # exit 1 if either is stale
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages come first

from gateway.contracts import EVENT_FILES, PUBLIC_SERVICES  # noqa: E402
from gateway.eventhub import streamed_types  # noqa: E402
from gateway.openapi.comments import packaged_comments  # noqa: E402
from gateway.openapi.document import build_openapi  # noqa: E402
from gateway.openapi.streams import add_gateway_routes  # noqa: E402
from gateway.transcoding.routes import build_routes  # noqa: E402

WEB = ROOT / "web"
DOCUMENT = WEB / "openapi.json"
SCHEMA = WEB / "src" / "api" / "schema.d.ts"
GENERATOR = WEB / "node_modules" / ".bin" / "openapi-typescript"


def openapi_document() -> dict[str, Any]:
    """The document the gateway serves at /openapi.json."""
    routes = build_routes(PUBLIC_SERVICES)
    return add_gateway_routes(
        build_openapi(routes, packaged_comments()), streamed_types(EVENT_FILES)
    )


def document_text() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_text(document: Path) -> str:
    """The TypeScript types openapi-typescript makes of `document`."""
    if not GENERATOR.exists():
        raise SystemExit(f"{GENERATOR.relative_to(ROOT)} is missing: run `npm ci` in web/")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "schema.d.ts"
        subprocess.run(
            [str(GENERATOR), str(document), "--output", str(out)],
            check=True,
            capture_output=True,
            text=True,
        )
        return out.read_text()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    args = parser.parse_args(argv)
    document = document_text()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "openapi.json"
        fresh.write_text(document)
        schema = schema_text(fresh)
    wanted = {DOCUMENT: document, SCHEMA: schema}
    if args.check:
        stale = [p for p, text in wanted.items() if not p.exists() or p.read_text() != text]
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)}", file=sys.stderr)
        if stale:
            print("run: python scripts/gen_web_client.py", file=sys.stderr)
            return 1
        print("web client up to date")
        return 0
    for path, text in wanted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
