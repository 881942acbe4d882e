"""kit.text: NUL characters anywhere in a request's text are found and named."""

from __future__ import annotations

import pytest
from google.protobuf.struct_pb2 import Struct

from kit.errors import InvalidArgument
from kit.text import check_request_text, nul_field
from klik.auth.v1.auth_pb2 import LoginRequest
from klik.content.v1.content_pb2 import CreatePostRequest
from klik.generation.v1.generation_pb2 import ChatTurn, CreateJobRequest, JobOptions


def test_clean_requests_pass() -> None:
    request = CreateJobRequest(
        kind="CHAT", prompt="héllo ✓", history=[ChatTurn(role="user", content="hi")]
    )
    assert nul_field(request) is None
    check_request_text(request)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (LoginRequest(email="a\x00@b.c", password="x"), "email"),
        (
            CreateJobRequest(kind="TEXT", prompt="p", options=JobOptions(voice_id="v\x00")),
            "options.voice_id",
        ),
        (
            CreateJobRequest(
                prompt="p", history=[ChatTurn(content="ok"), ChatTurn(content="\x00")]
            ),
            "history.content",
        ),
        (CreatePostRequest(title="t", asset_ids=["a", "b\x00"]), "asset_ids"),
    ],
)
def test_nul_is_found_by_its_field_path(request_: object, field: str) -> None:
    assert nul_field(request_) == field  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument) as raised:
        check_request_text(request_)
    assert raised.value.reason == "INVALID_CHARACTERS"
    assert raised.value.details == {"field": field}


def test_map_keys_and_values_are_checked() -> None:
    struct = Struct()
    struct.update({"ok": "fine"})
    assert nul_field(struct) is None
    struct.update({"k\x00": "v"})
    assert nul_field(struct) == "fields"
