"""Operator commands of the kit: `python -m kit health HOST:PORT [SERVICE]`."""

import sys

from kit import probe

COMMANDS = {"health": probe.main}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print("usage: python -m kit health HOST:PORT [SERVICE]", file=sys.stderr)
        sys.exit(2)
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
