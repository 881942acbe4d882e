"""Operator commands of the kit.

python -m kit health HOST:PORT [SERVICE]   exit 0 only when the server is SERVING
python -m kit keys DIR NAME...             create missing service identity keys
"""

import sys
from pathlib import Path

from kit import probe
from kit.identity import generate_keys


def keys(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m kit keys DIR NAME...", file=sys.stderr)
        return 2
    generate_keys(Path(argv[0]), argv[1:])
    print(f"service keys for {', '.join(argv[1:])} are in {argv[0]}")
    return 0


COMMANDS = {"health": probe.main, "keys": keys}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
