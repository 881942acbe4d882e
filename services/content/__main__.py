"""`python -m services.content`: serve the content service until SIGTERM/SIGINT."""

from kit.server import main
from services.content.service import SPEC

if __name__ == "__main__":
    main(SPEC)
