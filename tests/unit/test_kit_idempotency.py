"""kit.idempotency: key validation, fingerprints and IDEMPOTENCY_KEY_REUSED."""

from __future__ import annotations

import hashlib
import json

import grpc
import pytest

from kit.errors import Aborted, InvalidArgument
from kit.idempotency import (
    MAX_KEY_LENGTH,
    check_key,
    check_replay,
    fingerprint,
    key_reused,
    message_fingerprint,
)
from klik.generation.v1 import generation_pb2


def test_key_length_and_required() -> None:
    assert MAX_KEY_LENGTH == 200
    assert check_key("k" * 200) == "k" * 200
    assert check_key("") == "", "no key: no idempotency asked for"
    for bad, required in (("k" * 201, False), ("", True)):
        with pytest.raises(InvalidArgument) as refused:
            check_key(bad, required=required)
        assert refused.value.code is grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.reason == "INVALID_ARGUMENT"
        assert refused.value.details == {"field": "idempotency_key"}
    with pytest.raises(InvalidArgument) as refused:
        check_key("abcd", field="request_id", max_length=3)
    assert refused.value.details == {"field": "request_id"}
    assert "longer than 3 characters" in refused.value.message


def test_fingerprint_is_the_operation_and_fields_in_any_order() -> None:
    one = fingerprint("transfer", {"to": "bob", "amount": 5})
    assert one == fingerprint("transfer", {"amount": 5, "to": "bob"})
    assert one != fingerprint("transfer", {"to": "bob", "amount": 6})
    assert one != fingerprint("grant", {"to": "bob", "amount": 5})
    assert len(one) == 64
    # The wallet's stored fingerprints were taken exactly so: they stay valid.
    canonical = json.dumps(
        {"operation": "transfer", "to": "bob", "amount": 5}, sort_keys=True, separators=(",", ":")
    )
    assert one == hashlib.sha256(canonical.encode()).hexdigest()
    with pytest.raises(ValueError):
        fingerprint("transfer", {"operation": "grant"})


def test_message_fingerprint_ignores_the_key_and_keeps_the_message() -> None:
    request = generation_pb2.CreateJobRequest(kind="text", prompt="hi", idempotency_key="a")
    other_key = generation_pb2.CreateJobRequest(kind="text", prompt="hi", idempotency_key="b")
    assert message_fingerprint(request) == message_fingerprint(other_key)
    assert request.idempotency_key == "a", "the caller's message is not changed"
    assert message_fingerprint(request) != message_fingerprint(
        generation_pb2.CreateJobRequest(kind="text", prompt="ho", idempotency_key="a")
    )
    # The generation service's stored fingerprints were taken exactly so.
    body = generation_pb2.CreateJobRequest(kind="text", prompt="hi")
    expected = hashlib.sha256(body.SerializeToString(deterministic=True)).hexdigest()
    assert message_fingerprint(request) == expected
    assert message_fingerprint(request, ignore=("idempotency_key", "prompt")) != expected


def test_a_reused_key_is_aborted() -> None:
    check_replay("f" * 64, "f" * 64)
    with pytest.raises(Aborted) as refused:
        check_replay("f" * 64, "e" * 64, "transfer")
    assert refused.value.code is grpc.StatusCode.ABORTED
    assert refused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert "different transfer request" in refused.value.message
    assert key_reused().reason == "IDEMPOTENCY_KEY_REUSED"
    assert key_reused().message.endswith("with a different request")


def test_positional_fields_keep_their_order() -> None:
    one = fingerprint("SendMessage", ("chat-1", "hello"))
    assert one != fingerprint("SendMessage", ("hello", "chat-1"))
    assert one == fingerprint("SendMessage", ["chat-1", "hello"])
    assert one != fingerprint("SendMessage", {"chat_id": "chat-1", "content": "hello"})
    # The content service's stored fingerprints were taken exactly so.
    parts = ("SendMessage", "chat-1", "hello")
    expected = hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()
    assert one == expected
    with pytest.raises(TypeError):
        fingerprint("SendMessage", "chat-1")
