"""`python -m sandbox`: serve the sandbox on KLIK_SANDBOX_HOST:KLIK_SANDBOX_PORT
(127.0.0.1:8090), and its mail sink's SMTP on KLIK_SANDBOX_SMTP_PORT (8025), until
SIGTERM/SIGINT."""

from __future__ import annotations

import uvicorn

from kit.logs import setup_logging
from sandbox.app import create_app
from sandbox.mail import SmtpSink
from sandbox.settings import SandboxSettings


def main() -> None:
    settings = SandboxSettings.from_env()
    setup_logging("sandbox", settings.log_level)
    sink = SmtpSink(host=settings.host, port=settings.smtp_port).start()
    uvicorn.run(
        create_app(),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,  # GET /_sandbox/requests is the sandbox's own request log
        # Hanging requests (a fault) must not hold up a stop.
        timeout_graceful_shutdown=2,
    )
    sink.stop()


if __name__ == "__main__":
    main()
