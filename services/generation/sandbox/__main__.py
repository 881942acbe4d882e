"""`python -m services.generation.sandbox`: serve the provider sandbox on
KLIK_SANDBOX_HOST:KLIK_SANDBOX_PORT (127.0.0.1:8090) until SIGTERM/SIGINT."""

from __future__ import annotations

import uvicorn

from kit.config import env_str, sandbox_port
from kit.logs import setup_logging
from services.generation.sandbox.app import create_app


def main() -> None:
    setup_logging("sandbox", env_str("KLIK_LOG_LEVEL", "INFO").upper())
    uvicorn.run(
        create_app(),
        host=env_str("KLIK_SANDBOX_HOST", "127.0.0.1"),
        port=sandbox_port(),
        log_config=None,
        access_log=False,  # GET /_sandbox/requests is the sandbox's own request log
        # Hanging requests (a fault) must not hold up a stop.
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
