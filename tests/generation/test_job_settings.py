"""The bounds on jobs in flight come from the environment: the replica's, each
provider's (`KLIK_PROVIDER_<NAME>_MAX_IN_FLIGHT`) and each user's."""

from __future__ import annotations

import pytest

from kit.config import ConfigError
from services.generation.settings import (
    GenerationSettings,
    JobSettings,
    provider_limit_variable,
)


def test_provider_limits_are_read_by_provider_name() -> None:
    assert provider_limit_variable("sandbox") == "KLIK_PROVIDER_SANDBOX_MAX_IN_FLIGHT"
    assert provider_limit_variable("my-openai") == "KLIK_PROVIDER_MY_OPENAI_MAX_IN_FLIGHT"
    env = {
        "KLIK_PROVIDER_SANDBOX_MAX_IN_FLIGHT": "7",
        "KLIK_GENERATION_MAX_IN_FLIGHT": "50",
        "KLIK_JOBS_PER_USER": "3",
    }
    settings = GenerationSettings.from_env(env).jobs
    assert settings.provider_in_flight == {"sandbox": 7}
    assert (settings.max_in_flight, settings.per_user) == (50, 3)
    unset = JobSettings.from_env({}, ["sandbox"])
    assert unset.provider_in_flight == {}, "no limit but the replica's"
    assert (unset.max_in_flight, unset.per_user) == (2000, 16)


@pytest.mark.parametrize(
    "env",
    [
        {"KLIK_JOBS_PER_USER": "0"},
        {"KLIK_GENERATION_MAX_IN_FLIGHT": "0"},
        {"KLIK_PROVIDER_SANDBOX_MAX_IN_FLIGHT": "-1"},
    ],
)
def test_bounds_below_one_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        GenerationSettings.from_env(env)
