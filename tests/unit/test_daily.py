"""kit.daily: the window of UTC days, zero-filling and pivoting rows, and utc_day in
each dialect's SQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, DateTime, MetaData, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from kit import daily
from kit.errors import InvalidArgument


def test_the_window_ends_today_in_utc() -> None:
    # 23:30 at UTC-2 is already the next day in UTC.
    late = datetime(2026, 3, 1, 23, 30, tzinfo=timezone(timedelta(hours=-2)))
    window = daily.window(3, late)
    assert window.days == (date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 2))
    assert window.start == datetime(2026, 2, 28, tzinfo=UTC)
    assert len(daily.window(0, late).days) == daily.DEFAULT_DAYS
    assert len(daily.window(366, late).days) == 366


@pytest.mark.parametrize("days", [-1, 367, 10_000])
def test_a_window_outside_one_to_366_days_is_refused(days: int) -> None:
    with pytest.raises(InvalidArgument) as refused:
        daily.window(days, datetime.now(UTC))
    assert refused.value.reason == "INVALID_DAYS"


def test_group_by_takes_only_day() -> None:
    daily.group_by_day("")
    daily.group_by_day("day")
    with pytest.raises(InvalidArgument) as refused:
        daily.group_by_day("week")
    assert refused.value.reason == "INVALID_GROUP_BY"


def test_pivot_fills_every_day_and_label() -> None:
    window = daily.window(3, datetime(2026, 1, 3, 12, tzinfo=UTC))
    rows = [("2026-01-01", "IMAGE", 5), ("2026-01-03", "TEXT", 2), ("2026-01-03", "TEXT", 1)]
    assert daily.pivot(window, rows, ("CHAT",)) == [
        (date(2026, 1, 1), {"CHAT": 0, "IMAGE": 5, "TEXT": 0}),
        (date(2026, 1, 2), {"CHAT": 0, "IMAGE": 0, "TEXT": 0}),
        (date(2026, 1, 3), {"CHAT": 0, "IMAGE": 0, "TEXT": 3}),
    ]
    assert daily.pivot(window, []) == [(day, {}) for day in window.days]


def test_utc_day_is_spelled_for_each_dialect() -> None:
    table = Table("t", MetaData(), Column("at", DateTime(timezone=True)))
    query = select(daily.utc_day(table.c.at))
    pg = str(query.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    lite = str(query.compile(dialect=sqlite.dialect()))
    assert "to_char((t.at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')" in pg
    assert "date(t.at)" in lite
