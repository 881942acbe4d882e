"""Event types come from the payload messages' `(klik.options.v1.event)` options
(kit.bus.event_type_of): every klik payload declares its own, and nothing else may be
asked for."""

from __future__ import annotations

import pytest
from google.protobuf.wrappers_pb2 import StringValue

from kit.bus import event_options, event_type_of, event_types_of
from klik.events.v1 import events_pb2
from klik.events.v1.events_pb2 import JobTransitioned, UserDeleted, WalletChanged


def test_a_payload_names_its_event_type_as_a_message_a_class_or_a_descriptor() -> None:
    assert event_type_of(WalletChanged) == "wallet.changed"
    assert event_type_of(WalletChanged(user_id="u")) == "wallet.changed"
    assert event_type_of(UserDeleted.DESCRIPTOR) == "user.deleted"
    assert event_types_of(UserDeleted) == ("user.deleted",)


def test_a_shared_payload_has_one_type_per_variant() -> None:
    assert event_type_of(JobTransitioned, "succeeded") == "generation.job.succeeded"
    assert event_types_of(JobTransitioned) == tuple(
        f"generation.job.{status}"
        for status in ("queued", "running", "succeeded", "failed", "cancelled")
    )


def test_a_missing_extra_or_unknown_variant_is_refused() -> None:
    with pytest.raises(ValueError, match="variant '' is not declared"):
        event_type_of(JobTransitioned)
    with pytest.raises(ValueError, match="variant 'pending' is not declared"):
        event_type_of(JobTransitioned, "pending")
    with pytest.raises(ValueError, match="variant 'x' is not declared"):
        event_type_of(WalletChanged, "x")


def test_a_message_without_the_option_has_no_event_type() -> None:
    assert event_options(StringValue) is None
    assert event_types_of(StringValue) == ()
    with pytest.raises(ValueError, match="declares no"):
        event_type_of(StringValue)


def test_every_klik_payload_declares_distinct_event_types() -> None:
    seen: list[str] = []
    for message in events_pb2.DESCRIPTOR.message_types_by_name.values():
        types = event_types_of(message)
        assert types, f"{message.full_name} declares no event type"
        seen.extend(types)
    assert len(seen) == len(set(seen)) == 16
    streamed = {
        t
        for m in events_pb2.DESCRIPTOR.message_types_by_name.values()
        if (o := event_options(m)) is not None and o.streamed
        for t in event_types_of(m)
    }
    assert streamed == {
        "wallet.changed",
        "wallet.low_balance",
        "wallet.plan_changed",
        "content.notification.created",
        *event_types_of(JobTransitioned),
    }
