"""`python -m services.generation`: serve the generation service until SIGTERM/SIGINT."""

from kit.server import main
from services.generation.service import SPEC

if __name__ == "__main__":
    main(SPEC)
