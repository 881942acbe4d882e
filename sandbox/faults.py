"""Fault specs of the sandbox, with no I/O: their syntax, and which fault a request
gets.

A spec is comma-separated tokens, e.g. `latency=200,429x2`:

    latency=<ms>        wait this long before answering
    429 | 5xx           answer with this status, every time
    429x<N> | 5xxx<N>   answer with it the first N times, then normally
    retry-after=<s>     the Retry-After of those answers (default 1); `@<s>` sends
                        an HTTP-date <s> seconds ahead instead
    hang                never answer (until the client gives up)
    lost                carry the request out (a start creates its job), then never
                        answer (until the client gives up): a start whose answer a
                        dying client never got
    malformed           answer 200 with a body that is not JSON
    incomplete          answer JSON without what the API promises: a reply without
                        `usage`, a finished job without its images or duration
    filtered            the reply is withheld by a "safety filter" (content_filter)
    fail                the job (image, video) ends FAILED
    stuck               the job stays pending forever
    polls=<N>           the job completes on its Nth poll (default 2)
    render=<ms>         the job completes <ms> after it was created, however often it
                        is polled; then the sandbox calls the provider's webhook, if
                        one is registered (webhooks.py)

Streamed replies (`"stream": true`) take the faults above before their first byte,
and these once they stream (`incomplete` also leaves out their usage chunk):

    rate=<N>            N tokens a second (default: as fast as it can)
    words=<N>           the reply is N words long (default: 8 to 24 after its
                        opening): a long answer, as chat replies often are
    drop=<N>            the connection is cut after N content tokens: no finish, no
                        usage, no end of stream, not even the end of the HTTP body
    stall=<N>           after N content tokens nothing more is sent, and the stream
                        never ends (until the client gives up)

A `drop` or `stall` beyond the reply's length never happens: the stream completes.

Result files (`/files/...`, files.py) take these (from a header or a global fault):

    pad=<N>             the file carries N bytes more (a PNG ancillary chunk, an MP4
                        `free` box): a large download
    drop=<N>            the connection is cut after N bytes of the body

Where a spec comes from decides what "the first N times" counts: a header or prompt
marker counts repeats of the same request (the same method, path, query and body:
what a client's retries send), a global fault (admin endpoint) counts every request
it applies to."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

MARKER = re.compile(r"\[\[fault:([^\]]*)\]\]")
_STATUS = re.compile(r"^(429|5\d\d)(?:x(\d+))?$")


class FaultSpecError(ValueError):
    pass


@dataclass(frozen=True)
class Fault:
    latency_ms: int = 0
    status: int | None = None
    times: int | None = None  # None: every time
    retry_after: str = "1"
    hang: bool = False
    lost: bool = False  # carried out, then no answer
    malformed: bool = False
    incomplete: bool = False
    filtered: bool = False
    fail: bool = False
    stuck: bool = False
    polls: int | None = None
    render_ms: int | None = None  # the job completes this long after it was created
    rate: int | None = None  # tokens a second; None: as fast as it can
    words: int | None = None  # the reply's length in words; None: the usual short one
    drop: int | None = None  # cut the connection after this many tokens
    stall: int | None = None  # send nothing more after this many tokens
    pad: int | None = None  # result files: this many bytes more


def parse(spec: str) -> Fault:
    fault = Fault()
    for raw in spec.split(","):
        token = raw.strip().lower()
        if not token:
            continue
        name, _, value = token.partition("=")
        if match := _STATUS.match(token):
            times = None if match.group(2) is None else int(match.group(2))
            fault = replace(fault, status=int(match.group(1)), times=times)
        elif name == "latency" and value.isdigit():
            fault = replace(fault, latency_ms=int(value))
        elif name == "retry-after" and _retry_after_ok(value):
            fault = replace(fault, retry_after=value)
        elif name == "polls" and value.isdigit() and int(value) >= 1:
            fault = replace(fault, polls=int(value))
        elif name == "render" and value.isdigit():
            fault = replace(fault, render_ms=int(value))
        elif name == "rate" and value.isdigit() and int(value) >= 1:
            fault = replace(fault, rate=int(value))
        elif name == "words" and value.isdigit() and 1 <= int(value) <= 100_000:
            fault = replace(fault, words=int(value))
        elif name == "drop" and value.isdigit():
            fault = replace(fault, drop=int(value))
        elif name == "pad" and value.isdigit():
            fault = replace(fault, pad=int(value))
        elif name == "stall" and value.isdigit():
            fault = replace(fault, stall=int(value))
        elif token == "hang":
            fault = replace(fault, hang=True)
        elif token == "lost":
            fault = replace(fault, lost=True)
        elif token == "malformed":
            fault = replace(fault, malformed=True)
        elif token == "incomplete":
            fault = replace(fault, incomplete=True)
        elif token == "filtered":
            fault = replace(fault, filtered=True)
        elif token == "fail":
            fault = replace(fault, fail=True)
        elif token == "stuck":
            fault = replace(fault, stuck=True)
        else:
            raise FaultSpecError(f"unknown sandbox fault {raw.strip()!r}")
    return fault


def _retry_after_ok(value: str) -> bool:
    number = value[1:] if value.startswith("@") else value
    try:
        return float(number) >= 0
    except ValueError:
        return False


def markers(text: str) -> list[str]:
    """The specs of every `[[fault:...]]` marker in a prompt."""
    return MARKER.findall(text)


def strip_markers(text: str) -> str:
    return " ".join(MARKER.sub(" ", text).split())


@dataclass(frozen=True)
class Rule:
    """A fault from one source, and the counter its `times` counts on."""

    fault: Fault
    counter: tuple[str, ...]


class FaultBook:
    """Counts how often each counted fault was served."""

    def __init__(self) -> None:
        self.served: dict[tuple[str, ...], int] = {}

    def status(self, rules: Iterable[Rule]) -> Fault | None:
        """The first rule whose status fault still applies; counts it as served."""
        for rule in rules:
            fault = rule.fault
            if fault.status is None:
                continue
            done = self.served.get(rule.counter, 0)
            if fault.times is None or done < fault.times:
                self.served[rule.counter] = done + 1
                return fault
        return None

    def forget(self, prefix: str) -> None:
        for key in [k for k in self.served if k[0] == prefix]:
            del self.served[key]


def combined(rules: Iterable[Rule]) -> Fault:
    """Everything but the status: latency adds up, flags from any rule hold, and
    `polls`, `render`, `rate`, `drop`, `stall` and `pad` come from the first rule that sets
    them."""
    result = Fault()
    for rule in rules:
        f = rule.fault
        result = replace(
            result,
            latency_ms=result.latency_ms + f.latency_ms,
            hang=result.hang or f.hang,
            lost=result.lost or f.lost,
            malformed=result.malformed or f.malformed,
            incomplete=result.incomplete or f.incomplete,
            filtered=result.filtered or f.filtered,
            fail=result.fail or f.fail,
            stuck=result.stuck or f.stuck,
            polls=_first(result.polls, f.polls),
            render_ms=_first(result.render_ms, f.render_ms),
            rate=_first(result.rate, f.rate),
            words=_first(result.words, f.words),
            drop=_first(result.drop, f.drop),
            stall=_first(result.stall, f.stall),
            pad=_first(result.pad, f.pad),
        )
    return result


def _first(a: int | None, b: int | None) -> int | None:
    return a if a is not None else b
