"""`python -m gateway`: serve the HTTP gateway until SIGTERM/SIGINT."""

from gateway.app import create_app
from gateway.server import GatewayServer, server_config
from gateway.settings import GatewaySettings
from kit import heap
from kit.logs import setup_logging


def main() -> None:
    settings = GatewaySettings.from_env()
    setup_logging("gateway", settings.log_level)
    app = create_app(settings)
    heap.settle()  # thousands of open streams: see kit/heap.py
    GatewayServer(server_config(app, settings), app).run()


if __name__ == "__main__":
    main()
