"""The assistant rules without I/O: field limits, the temperature range, update
masks, and who sees or changes an assistant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kit.errors import DomainError, InvalidArgument, NotFound, PermissionDenied
from services.content import domain
from services.content.domain import Assistant, Chat, Persona, Viewer, Visibility

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def assistant(visibility: Visibility = Visibility.PRIVATE) -> Assistant:
    return Assistant("a", "owner", "n", "", "be kind", "m", None, visibility, NOW, NOW)


def refusal(error: pytest.ExceptionInfo[DomainError]) -> tuple[str, str]:
    return error.value.reason, str(error.value.details.get("field", ""))


@pytest.mark.parametrize("value", [0.0, 1.0, 2.0, None])
def test_temperatures_from_0_to_2_or_none_are_taken(value: float | None) -> None:
    assert domain.temperature(value) == value


@pytest.mark.parametrize("value", [-0.01, 2.01, float("nan"), float("inf")])
def test_other_temperatures_are_refused(value: float) -> None:
    with pytest.raises(InvalidArgument) as error:
        domain.temperature(value)
    assert refusal(error) == ("INVALID_TEMPERATURE", "temperature")


def test_an_empty_mask_checks_and_changes_every_field() -> None:
    changes = domain.assistant_changes(
        [],
        name="n",
        description="d",
        instructions_="i",
        model="m",
        temperature_=None,
        visibility_="",
    )
    assert changes == {
        "name": "n",
        "description": "d",
        "instructions": "i",
        "model": "m",
        "temperature": None,
        "visibility": Visibility.PRIVATE,
    }
    with pytest.raises(InvalidArgument) as error:
        domain.assistant_changes(
            [],
            name="n",
            description="",
            instructions_="",
            model="",
            temperature_=None,
            visibility_="",
        )
    assert refusal(error) == ("INVALID_ARGUMENT", "instructions")


def test_a_mask_changes_only_what_it_names_and_only_known_fields() -> None:
    changes = domain.assistant_changes(
        ["name", "name"],
        name="new",
        description="d" * 10_000,  # not named: not checked
        instructions_="",
        model="",
        temperature_=9.0,
        visibility_="nonsense",
    )
    assert changes == {"name": "new"}
    with pytest.raises(InvalidArgument) as error:
        domain.assistant_changes(
            ["owner_id"],
            name="",
            description="",
            instructions_="",
            model="",
            temperature_=None,
            visibility_="",
        )
    assert refusal(error) == ("INVALID_UPDATE_MASK", "update_mask")


def test_private_assistants_are_their_owners_even_for_admins_and_public_ones_readable() -> None:
    owner, other = Viewer("owner", "user"), Viewer("other", "admin")
    private, public = assistant(), assistant(Visibility.PUBLIC)
    assert domain.visible_assistant(private, owner, "a") is private
    assert domain.owned_assistant(private, owner, "a") is private
    with pytest.raises(NotFound):
        domain.visible_assistant(private, other, "a")
    with pytest.raises(NotFound):
        domain.visible_assistant(None, owner, "a")
    assert domain.visible_assistant(public, other, "a") is public
    with pytest.raises(PermissionDenied) as denied:
        domain.owned_assistant(public, other, "a")
    assert denied.value.reason == "NOT_OWNER"


def test_a_chat_with_an_assistant_answers_with_its_model() -> None:
    plain = Chat("c", "owner", "t", "chat-model", NOW, NOW)
    assert plain.answering_model == "chat-model"
    persona = Persona("n", "i", "assistant-model", 0.5)
    with_persona = Chat("c", "owner", "t", "", NOW, NOW, "a", persona)
    assert with_persona.answering_model == "assistant-model"
    assert assistant().persona == Persona("n", "be kind", "m", None)
