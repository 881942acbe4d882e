"""What every benchmark shares: the table row, the HTTP load generator (`wrk`) and
the pool of client processes for gRPC / in-process load, each reporting how much CPU
the client itself used, so that a figure is shown to be klik's and not the client's.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import multiprocessing.pool
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORES = os.cpu_count() or 1


# ---- the one table --------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure, and the baseline it is read against (measured
    in the same run), `client` saying how busy the load generator was."""

    what: str
    figure: float
    unit: str
    baseline: float | None = None
    baseline_what: str = ""
    client: str = ""
    baseline_unit: str = ""  # when not `unit`

    def ratio(self) -> str:
        if not self.baseline:
            return "—"
        return f"{self.figure / self.baseline:.2f}x"


def number(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value:,.2f} {unit}"
    return f"{value:,.0f} {unit}"


def table(rows: Iterable[Row]) -> str:
    cells = [("what", "figure", "baseline", "ratio", "client CPU")]
    for row in rows:
        baseline = "—"
        if row.baseline is not None:
            unit = row.baseline_unit or row.unit
            baseline = f"{number(row.baseline, unit)} ({row.baseline_what})"
        cells.append(
            (row.what, number(row.figure, row.unit), baseline, row.ratio(), row.client or "—")
        )
    widths = [max(len(line[i]) for line in cells) for i in range(len(cells[0]))]

    def joined(line: tuple[str, ...]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()

    out = [joined(cells[0]), "-+-".join("-" * width for width in widths)]
    out += [joined(line) for line in cells[1:]]
    return "\n".join(out)


def cores_used(cpu_seconds: float, wall_seconds: float) -> str:
    """CPU time over wall time, as the share of the machine's cores it took."""
    busy = cpu_seconds / wall_seconds if wall_seconds > 0 else 0.0
    return f"{busy:.2f} of {CORES} cores"


@dataclass(frozen=True)
class Load:
    """A closed-loop load's result: requests per second, latency, and the client's CPU."""

    rate: float
    p50_ms: float
    p99_ms: float
    cpu_seconds: float  # the client's user + system CPU time
    wall_seconds: float
    busiest: float = 0.0  # the busiest client process (or wrk) CPU over wall, 1.0 = one core

    @property
    def client(self) -> str:
        return cores_used(self.cpu_seconds, self.wall_seconds) + f", busiest {self.busiest:.0%}"

    def line(self, what: str) -> str:
        return (
            f"{what:<34} {self.rate:>7,.0f} req/s  p50 {self.p50_ms:6.2f} ms  "
            f"p99 {self.p99_ms:6.2f} ms  client CPU {self.client}"
        )


def merge(loads: Sequence[Load]) -> Load:
    """Rounds of the same load, one figure (rates and percentiles weighted by time)."""
    wall = sum(load.wall_seconds for load in loads)
    return Load(
        rate=sum(load.rate * load.wall_seconds for load in loads) / wall,
        p50_ms=sum(load.p50_ms * load.wall_seconds for load in loads) / wall,
        p99_ms=max(load.p99_ms for load in loads),
        cpu_seconds=sum(load.cpu_seconds for load in loads),
        wall_seconds=wall,
        busiest=max(load.busiest for load in loads),
    )


def in_tmp(
    measure: Callable[[Any, Path], Coroutine[Any, Any, list[Row]]], args: Any, prefix: str
) -> list[Row]:
    """`measure(args, root)` run to its end, `root` a temporary directory of its own."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        return asyncio.run(measure(args, Path(tmp)))


# ---- HTTP: wrk ------------------------------------------------------------------------


def wrk_binary() -> str:
    """`wrk` (Debian's package), installed when missing and we may."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("the HTTP benchmarks need wrk: apt-get install -y wrk")
    print("installing wrk (apt-get install -y wrk)", flush=True)

    def apt(*argv: str) -> int:
        quiet = subprocess.DEVNULL
        return subprocess.run(["apt-get", *argv], stdout=quiet, stderr=quiet).returncode

    if apt("install", "-y", "wrk") and (apt("update") or apt("install", "-y", "wrk")):
        raise SystemExit("apt-get install -y wrk failed")
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get install -y wrk did not bring wrk")
    return found


def lua_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def wrk_script(method: str, headers: Mapping[str, str], body: str | None) -> str:
    """The Lua script: the request, and a `done` that prints one parseable line."""
    lines = [f"wrk.method = {lua_string(method)}"]
    lines += [f"wrk.headers[{lua_string(k)}] = {lua_string(v)}" for k, v in headers.items()]
    if body is not None:
        lines.append(f"wrk.body = {lua_string(body)}")
    lines.append(
        "done = function(summary, latency, requests)\n"
        "  local e = summary.errors\n"
        '  io.write(string.format("BENCH %d %d %d %d %d %d %d %.1f %.1f\\n",\n'
        "    summary.duration, summary.requests, e.connect, e.read, e.write, e.status,\n"
        "    e.timeout, latency:percentile(50), latency:percentile(99)))\n"
        "end"
    )
    return "\n".join(lines) + "\n"


def run_wrk(
    url: str,
    *,
    seconds: float,
    connections: int,
    threads: int | None = None,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    strict: bool = True,
) -> Load:
    """`wrk` against `url` for `seconds` over `connections` keep-alive connections; its
    own CPU time comes from wait4's rusage (the whole process, every thread). When
    `strict` (not in a warm-up), any error status or no request at all fails, and so
    do socket errors beyond 1% of the requests."""
    threads = threads or min(CORES, connections)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(method, headers or {}, body))
    try:
        argv = [
            wrk_binary(),
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
            url,
        ]
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert child.stdout is not None
        output = child.stdout.read().decode()
        child.stdout.close()
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    finally:
        Path(script.name).unlink()
    summary = [line for line in output.splitlines() if line.startswith("BENCH ")]
    if child.returncode or not summary:
        raise SystemExit(f"wrk failed ({child.returncode}):\n{output}")
    fields = summary[-1].split()
    duration_us, requests, connect, read, write, bad_status, timeout = map(int, fields[1:8])
    p50_us, p99_us = float(fields[8]), float(fields[9])
    if strict and (bad_status or connect or requests == 0):
        raise SystemExit(f"{url}: {bad_status} error statuses, {connect} connect errors\n{output}")
    if strict and read + write + timeout > requests // 100:
        raise SystemExit(f"{url}: {read} read, {write} write, {timeout} timeout errors\n{output}")
    wall = duration_us / 1e6
    cpu = usage.ru_utime + usage.ru_stime
    return Load(requests / wall, p50_us / 1e3, p99_us / 1e3, cpu, wall, cpu / wall)


# ---- gRPC / in-process: client processes ----------------------------------------------


@dataclass
class Sample:
    """What one client process did in the window."""

    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0
    elapsed: float = 0.0
    records: list[Any] = field(default_factory=list)  # whatever else the work reports


async def closed_loop(
    call: Callable[[], Awaitable[object]], concurrency: int, start_at: float, seconds: float
) -> Sample:
    """`concurrency` workers calling `call` back to back from `start_at` (a
    time.monotonic(), the same clock in every process) for `seconds`."""
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    stop = start_at + seconds
    sample = Sample()

    async def worker() -> None:
        while (began := time.monotonic()) < stop:
            await call()
            sample.latencies.append(time.monotonic() - began)

    cpu, began = time.process_time(), time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    sample.cpu, sample.elapsed = time.process_time() - cpu, time.monotonic() - began
    return sample


def combine(samples: Sequence[Sample]) -> Load:
    """One figure from the client processes' samples of the same window."""
    latencies = [x for sample in samples for x in sample.latencies]
    if len(latencies) < 2:
        raise SystemExit(f"the client processes completed {len(latencies)} calls in the window")
    cuts = statistics.quantiles(latencies, n=100)
    wall = max(sample.elapsed for sample in samples)
    return Load(
        rate=sum(len(s.latencies) / s.elapsed for s in samples if s.elapsed),
        p50_ms=cuts[49] * 1e3,
        p99_ms=cuts[98] * 1e3,
        cpu_seconds=sum(sample.cpu for sample in samples),
        wall_seconds=wall,
        busiest=max(sample.cpu / sample.elapsed for sample in samples if sample.elapsed),
    )


def _import(module: str) -> None:
    importlib.import_module(module)
    time.sleep(0.5)  # so that each process takes one of these


class Clients:
    """`processes` client processes (spawned once, reused for every window): each runs
    `work(payload, start_at, seconds) -> Sample`, a module-level function."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self._pool: multiprocessing.pool.Pool | None = None

    def __enter__(self) -> Clients:
        self._pool = multiprocessing.get_context("spawn").Pool(self.processes)
        return self

    async def ready(self, work: Callable[..., Sample]) -> None:
        """Every process up with `work`'s module imported (slow on a busy machine),
        so that a window's start finds them all waiting."""
        assert self._pool is not None
        jobs = [(work.__module__,)] * self.processes
        await asyncio.to_thread(self._pool.starmap, _import, jobs, 1)

    def __exit__(self, *exc: object) -> None:
        assert self._pool is not None
        self._pool.terminate()
        self._pool.join()

    async def samples(
        self, work: Callable[[Any, float, float], Sample], payloads: Sequence[Any], seconds: float
    ) -> list[Sample]:
        """`work` in every process at once, process i given `payloads[i]`."""
        assert self._pool is not None and len(payloads) == self.processes
        await self.ready(work)
        start_at = time.monotonic() + 1.0  # every process ready, then all at once
        jobs = [(payload, start_at, seconds) for payload in payloads]
        # Waited for on the loop, not in a thread: a cancelled window (a benchmark
        # giving up) leaves no thread behind blocked on results that never come.
        result = self._pool.starmap_async(work, jobs, 1)
        while not result.ready():  # noqa: ASYNC110 - a pool's result has no awaitable
            await asyncio.sleep(0.05)
        return result.get()

    async def run(
        self, work: Callable[[Any, float, float], Sample], payloads: Sequence[Any], seconds: float
    ) -> Load:
        return combine(await self.samples(work, payloads, seconds))


def levels(text: str) -> list[int]:
    """A `--sweep` argument: "1,4,16" -> [1, 4, 16]; "" -> []."""
    return [int(part) for part in text.split(",") if part.strip()]
