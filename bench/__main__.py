"""`python -m bench` (`make bench`): every benchmark in turn, then one table.

    .venv/bin/python -m bench [--only gateway_wallet,wallet_holds]

Each benchmark is a module of this package with `rows(argv) -> list[Row]` (it prints
its own detail as it goes) and runs alone too: `python -m bench.<name> --help`.
HTTP load comes from `wrk`, installed first when missing (Debian's package).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from bench.common import Row, table, wrk_binary

BENCHMARKS = (
    "gateway_wallet",
    "wallet_holds",
    "outbox_relay",
    "auth_tokens",
    "generation_jobs",
    "stream_ttft",
    "events_fanout",
    "media_inflight",
)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", default="", help="comma-separated: " + ", ".join(BENCHMARKS))
    args = parser.parse_args()
    chosen = [name for name in args.only.split(",") if name] or list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    print(f"wrk: {wrk_binary()}", flush=True)
    rows: list[Row] = []
    failed: list[str] = []
    for name in chosen:
        print(f"\n== bench.{name}", flush=True)
        started = time.monotonic()
        try:
            rows += importlib.import_module(f"bench.{name}").rows(())
        except (Exception, SystemExit):
            traceback.print_exc()
            failed.append(name)
        print(f"({time.monotonic() - started:.0f} s)", flush=True)
    print("\n" + table(rows))
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
