"""`python -m stack` (what `make run` runs): the whole suite on one machine.

Starts a nats-server with JetStream (its store under var/nats) and the sandbox
(generation routes every provider without a real key to it), then every service and
the gateway, each logging to var/log/<name>.log (topology.py); prints the gateway URL
once /readyz answers 200; restarts a process that crashes (with backoff, a line on
stderr each time: the stack goes on serving); on Ctrl-C, SIGTERM or SIGHUP stops them
in reverse order and waits for each (processes.py). Children die with the launcher
however it dies, SIGKILL included.
A lock file, taken before anything else, keeps a second copy from starting on the same
var/ directory — its databases and the nats-server JetStream store (lock.py)."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

from kit.config import var_dir
from stack.lock import hold_lock
from stack.processes import StackError, Supervisor
from stack.topology import plan, prepare

READY_TIMEOUT_SECONDS = 90.0


class _Stop(Exception):
    pass


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def main() -> int:
    lock = hold_lock(var_dir(os.environ))
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGHUP, _raise_stop)
    supervisor: Supervisor | None = None
    code = 0
    try:
        topology = plan(os.environ)
        supervisor = Supervisor(topology.env, topology.logs, topology.grace_seconds)
        prepare(topology)
        supervisor.start(topology.processes)
        url = supervisor.wait_ready(topology.gateway_url, READY_TIMEOUT_SECONDS)
        print(f"klik is ready: {url}  (logs in {topology.logs}; Ctrl-C stops)", flush=True)
        supervisor.watch()
    except _Stop:
        print("stopping klik…", flush=True)
    except StackError as error:
        print(f"klik failed to start: {error}", file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        if supervisor is not None:
            supervisor.stop()
        lock.close()
    print("klik stopped", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
