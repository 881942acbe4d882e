"""KLIK_EVENT_LOOP: the loop a service process runs on (kit.server.main)."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from kit.config import ConfigError
from kit.server import event_loop_factory


def test_services_run_on_uvloop_by_default() -> None:
    factory = event_loop_factory({})
    assert factory is not None
    with asyncio.Runner(loop_factory=factory) as runner:
        assert isinstance(runner.get_loop(), uvloop.Loop)


def test_the_standard_loop_can_be_chosen() -> None:
    assert event_loop_factory({"KLIK_EVENT_LOOP": "asyncio"}) is None
    assert event_loop_factory({"KLIK_EVENT_LOOP": "UVLOOP"}) is not None


def test_an_unknown_loop_is_refused() -> None:
    with pytest.raises(ConfigError, match="KLIK_EVENT_LOOP must be uvloop or asyncio"):
        event_loop_factory({"KLIK_EVENT_LOOP": "trio"})
