"""`python -m services.wallet`: serve the wallet service until SIGTERM/SIGINT."""

from kit.server import main
from services.wallet.service import SPEC

if __name__ == "__main__":
    main(SPEC)
