"""The jobs' rules without I/O: which options apply to which kind, the hold's expiry
against the job's deadline, the statuses a client may filter by."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kit.errors import FailedPrecondition, InvalidArgument
from services.generation.domain import (
    CAPTURE_MARGIN_SECONDS,
    Kind,
    Options,
    Status,
    Turn,
    can_start,
    charged,
    check_listed,
    check_options,
    check_prompt,
    finished_error,
    hold_expiry,
)

NOW = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        (Kind.TEXT, Options(max_tokens=100, temperature=0.0, system_prompt="s")),
        (Kind.CHAT, Options(history=(Turn("user", "a"), Turn("assistant", "b")))),
        (Kind.IMAGE, Options(width=64, height=1536, num_images=4, negative_prompt="n")),
        (Kind.AVATAR_VIDEO, Options(avatar_id="a", voice_id="v", max_video_seconds=3600)),
        (Kind.IMAGE, Options()),
    ],
)
def test_options_that_apply_pass(kind: Kind, options: Options) -> None:
    assert check_options(kind, options) == options


@pytest.mark.parametrize(
    ("kind", "options", "option"),
    [
        (Kind.TEXT, Options(width=64), "width"),
        (Kind.TEXT, Options(history=(Turn("user", "a"),)), "history"),
        (Kind.IMAGE, Options(max_tokens=5), "max_tokens"),
        (Kind.IMAGE, Options(temperature=1.0), "temperature"),
        (Kind.AVATAR_VIDEO, Options(num_images=1), "num_images"),
        (Kind.CHAT, Options(avatar_id="a"), "avatar_id"),
        (Kind.IMAGE, Options(width=63), "width"),
        (Kind.IMAGE, Options(height=1544), "height"),
        (Kind.IMAGE, Options(num_images=5), "num_images"),
        (Kind.IMAGE, Options(num_images=-1), "num_images"),
        (Kind.TEXT, Options(max_tokens=-1), "max_tokens"),
        (Kind.CHAT, Options(temperature=2.01), "temperature"),
        (Kind.AVATAR_VIDEO, Options(max_video_seconds=3601), "max_video_seconds"),
        (Kind.CHAT, Options(history=(Turn("system", "a"),)), "history"),
    ],
)
def test_options_out_of_range_or_not_applying_are_refused(
    kind: Kind, options: Options, option: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_options(kind, options)
    assert refused.value.reason == "INVALID_OPTIONS"
    assert refused.value.details == {"option": option}


def test_listed_ids_and_prompts() -> None:
    check_listed("avatar_id", "", ("a",))  # "" picks the provider's default
    check_listed("avatar_id", "a", ("a",))
    with pytest.raises(InvalidArgument, match="unknown avatar_id"):
        check_listed("avatar_id", "b", ("a",))
    with pytest.raises(InvalidArgument, match="blank"):
        check_prompt(" \n\t")
    with pytest.raises(InvalidArgument):
        check_prompt("x" * 32_001)


def test_a_hold_outlives_the_queue_wait_and_the_deadline() -> None:
    deadline, queue = 300.0, 3600.0
    expires = hold_expiry(NOW, deadline, queue)
    assert expires.microsecond == 0, "whole seconds: a replayed PlaceHold is identical"
    assert expires >= NOW + timedelta(seconds=queue + deadline + CAPTURE_MARGIN_SECONDS)
    # A job may start while its deadline (and time to capture) still fits in the hold...
    assert can_start(NOW, deadline, expires)
    assert can_start(NOW + timedelta(seconds=queue), deadline, expires)
    # ...and not once it has waited so long that it could outlive its hold.
    late = expires - timedelta(seconds=deadline + CAPTURE_MARGIN_SECONDS / 2 - 1)
    assert not can_start(late, deadline, expires)


def test_charged_is_the_actual_price_never_more_than_held() -> None:
    assert charged(10, 7) == 7
    assert charged(10, 12) == 10
    assert charged(10, -1) == 0


def test_statuses_a_client_may_filter_by() -> None:
    assert Status.parse_filter("") is None
    assert Status.parse_filter("RUNNING") is Status.RUNNING
    for hidden in ("PENDING", "ABANDONED", "running", "DONE"):
        with pytest.raises(InvalidArgument) as refused:
            Status.parse_filter(hidden)
        assert refused.value.reason == "INVALID_STATUS"
    assert [s for s in Status if s.public] == [
        Status.QUEUED,
        Status.RUNNING,
        Status.SUCCEEDED,
        Status.FAILED,
        Status.CANCELLED,
    ]
    assert isinstance(finished_error(Status.FAILED), FailedPrecondition)
    assert finished_error(Status.SUCCEEDED).reason == "JOB_ALREADY_FINISHED"


def test_options_written_by_a_newer_version_still_load() -> None:
    from services.generation.store import load_options

    stored = '{"max_tokens": 7, "history": [{"role": "user", "content": "hi"}], "seed": 42}'
    options = load_options(stored)
    assert options.max_tokens == 7
    assert options.history == (Turn("user", "hi"),)
