"""`python -m services.auth`: serve the auth service until SIGTERM/SIGINT."""

from kit.server import main
from services.auth.service import SPEC

if __name__ == "__main__":
    main(SPEC)
