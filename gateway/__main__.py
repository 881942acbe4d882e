"""`python -m gateway`: serve the HTTP gateway until SIGTERM/SIGINT."""

import uvicorn

from gateway.app import create_app
from gateway.server import GatewayServer
from gateway.settings import GatewaySettings
from kit.logs import setup_logging


def main() -> None:
    settings = GatewaySettings.from_env()
    setup_logging("gateway", settings.log_level)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.grace_seconds),
    )
    GatewayServer(config, app).run()


if __name__ == "__main__":
    main()
