"""One stack per var/ directory: a lock file the running stack holds (with its pid
in it), so a second copy refuses to start on the same SQLite files and NATS store."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


def hold_lock(var: Path) -> IO[str]:
    """Take var/stack.lock for this process's life (close the file to let go); exit
    with a message when another stack holds it."""
    var.mkdir(parents=True, exist_ok=True)
    lock = open(var / "stack.lock", "a+")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        raise SystemExit(
            f"klik is already running from {var} (pid {lock.read().strip() or '?'}); "
            "stop it first or set KLIK_VAR_DIR"
        ) from None
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    return lock
