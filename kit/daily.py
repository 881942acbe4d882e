"""Per-day summaries: the UTC day of a timestamp column in SQL, the window of days a
summary RPC covers, and the zero-filling of days with no rows.

    window = daily.window(request.days, now)           # INVALID_DAYS outside 1..366
    day = daily.utc_day(ledger.c.created_at)
    rows = await session.execute(
        select(day, func.sum(ledger.c.amount))
        .where(ledger.c.created_at >= window.start)
        .group_by(day)
    )
    totals = daily.fill(window, {(r[0]): r[1] for r in rows}, 0)

`utc_day(column)` is the `YYYY-MM-DD` of a `DateTime(timezone=True)` column in UTC,
compiled for each dialect (PostgreSQL and SQLite spell date truncation differently),
so one query serves both and the GROUP BY happens in the database on the indexed
time column's range."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from kit.errors import InvalidArgument

__all__ = [
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "Window",
    "fill",
    "group_by_day",
    "pivot",
    "utc_day",
    "window",
]

MAX_DAYS = 366
DEFAULT_DAYS = 30
T = TypeVar("T")
# (UTC day, label, value) rows, as the summary queries give them to `pivot`.
Rows = list[tuple[str, str, int]]


class utc_day(FunctionElement[str]):
    """The UTC calendar day of a timestamp column, as text `YYYY-MM-DD`."""

    type = String()
    name = "utc_day"
    inherit_cache = True


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"to_char(({column}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLAlchemy stores SQLite datetimes as ISO text; klik stores only UTC times.
    return f"date({compiler.process(element.clauses, **kw)})"


@dataclass(frozen=True)
class Window:
    """The last `len(days)` UTC days up to and including today, oldest first."""

    days: tuple[date, ...]

    @property
    def start(self) -> datetime:
        """Midnight UTC of the first day: rows at or after it are in the window."""
        return datetime.combine(self.days[0], time.min, tzinfo=UTC)


def group_by_day(group_by: str) -> None:
    """Refuse any grouping but by day ("" means day): INVALID_ARGUMENT `INVALID_GROUP_BY`."""
    if group_by not in ("", "day"):
        raise InvalidArgument(
            "INVALID_GROUP_BY",
            f"group_by must be 'day', not {group_by[:40]!r}",
            details={"field": "group_by"},
        )


def window(days: int, now: datetime) -> Window:
    """The window of `days` UTC days ending today (0 means DEFAULT_DAYS); outside
    1..MAX_DAYS: INVALID_ARGUMENT `INVALID_DAYS`."""
    if days == 0:
        days = DEFAULT_DAYS
    if not 1 <= days <= MAX_DAYS:
        raise InvalidArgument(
            "INVALID_DAYS",
            f"days must be between 1 and {MAX_DAYS}, not {days}",
            details={"field": "days", "max": MAX_DAYS},
        )
    today = now.astimezone(UTC).date()
    return Window(tuple(today - timedelta(days=back) for back in range(days - 1, -1, -1)))


def fill(window: Window, found: Mapping[str, T], empty: Callable[[], T]) -> list[tuple[date, T]]:
    """Every day of the window with its value in `found` (keyed by `YYYY-MM-DD`, as
    `utc_day` gives it), or `empty()` for a day without rows."""
    return [
        (day, found[key] if (key := day.isoformat()) in found else empty()) for day in window.days
    ]


def pivot(
    window: Window, rows: Iterable[tuple[str, str, int]], labels: Sequence[str] = ()
) -> list[tuple[date, dict[str, int]]]:
    """(day, label, value) rows as every day of the window with a value per label:
    the `labels` given in their order, then any other label the rows have (sorted),
    0 where a day has none of it."""
    found: dict[str, dict[str, int]] = {}
    seen = list(labels)
    for day, label, value in rows:
        found.setdefault(day, {})[label] = found.get(day, {}).get(label, 0) + value
        if label not in seen:
            seen.append(label)
    order = list(labels) + sorted(set(seen) - set(labels))
    return [
        (day, {label: values.get(label, 0) for label in order})
        for day, values in fill(window, found, dict)
    ]
