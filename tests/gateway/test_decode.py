"""An HTTP request into the gRPC request message, and the reply back into JSON, per
template form of the test proto: body `*`, a body field, query parameters of every
kind, path variables, PATCH field masks, response_body; and the 400s for bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format

from gateway.errors import GatewayError
from gateway.transcoding.decode import decode_request
from gateway.transcoding.encode import encode_response
from gateway.transcoding.routes import Route
from tests.gateway.conftest import RoutesContract


def decode(
    route: Route,
    *,
    params: dict[str, str] | None = None,
    query: list[tuple[str, str]] | None = None,
    body: object = None,
) -> Any:
    raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    return decode_request(route, params or {}, query or [], raw)


def refused(route: Route, **kwargs: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        decode(route, **kwargs)
    return caught.value


def test_body_star_fills_the_request_and_the_path_wins(contract: RoutesContract) -> None:
    route = contract.route("ArchiveThing")
    message = decode(
        route,
        params={"thing_id": "from-path"},
        body={"thing_id": "from-body", "reason": "old", "amount": "9007199254740993"},
    )
    assert (message.thing_id, message.reason) == ("from-path", "old")
    assert message.amount == 9007199254740993  # int64 as a string keeps every digit
    assert decode(route, body={"amount": 5}).amount == 5  # ...and as a number too


def test_an_empty_body_is_an_empty_object(contract: RoutesContract) -> None:
    message = decode(contract.route("ArchiveThing"), params={"thing_id": "t"}, body=b"")
    assert (message.thing_id, message.reason) == ("t", "")


def test_body_field_goes_into_that_field_and_the_rest_comes_from_the_query(
    contract: RoutesContract,
) -> None:
    message = decode(
        contract.route("CreateBook"),
        params={"parent": "shelves/s1"},
        query=[("request_id", "r1")],
        body={"title": "Dune"},
    )
    assert message.parent == "shelves/s1"
    assert message.book.title == "Dune"
    assert message.request_id == "r1"


def test_query_parameters_of_every_kind(contract: RoutesContract) -> None:
    message = decode(
        contract.route("ListThings"),
        query=[
            ("page_size", "5"),
            ("tags", "a"),
            ("tags", "b c"),
            ("filter.color", "COLOR_RED"),
            ("filter.min_size", "10"),
            ("color", "2"),
            ("created_after", "2024-05-01T12:00:00Z"),
            ("fields", "name,filter.min_size"),
            ("limit", "7"),
            ("flag", "true"),
            ("ratio", "0.25"),
            ("big", "-9007199254740993"),
            ("ids", "1"),
            ("ids", "2"),
            ("colors", "COLOR_BLUE"),
            ("colors", "1"),
            ("strict", "false"),
            ("within", "1.5s"),
        ],
    )
    module = contract.module
    assert message.page_size == 5
    assert list(message.tags) == ["a", "b c"]
    assert message.filter.color == module.COLOR_RED and message.filter.min_size == 10
    assert message.color == module.COLOR_BLUE
    assert message.created_after.ToJsonString() == "2024-05-01T12:00:00Z"
    assert list(message.fields.paths) == ["name", "filter.min_size"]
    assert message.HasField("limit") and message.limit.value == 7
    assert message.flag is True and message.ratio == 0.25
    assert message.big == -9007199254740993
    assert list(message.ids) == [1, 2]
    assert list(message.colors) == [module.COLOR_BLUE, module.COLOR_RED]
    assert message.HasField("strict") and message.strict.value is False
    assert message.within.ToNanoseconds() == 1_500_000_000


def test_path_variables_fill_nested_fields_beside_query_siblings(
    contract: RoutesContract,
) -> None:
    message = decode(
        contract.route("GetProfile"),
        params={"user.id": "u1"},
        query=[("user.name", "ann"), ("verbose", "1")],
    )
    assert (message.user.id, message.user.name, message.verbose) == ("u1", "ann", True)


def test_additional_binding_takes_its_path_variable(contract: RoutesContract) -> None:
    message = decode(contract.route("ListThings", 1), params={"shelf": "s2"})
    assert message.shelf == "s2"


def test_body_star_binding_refuses_query_parameters(contract: RoutesContract) -> None:
    route = contract.route("ListThings", 2)
    assert decode(route, body={"tags": ["x"], "page_size": 3}).page_size == 3
    error = refused(route, query=[("page_size", "3")])
    assert "page_size" in error.message and error.code == "INVALID_FIELD"


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ([("pagesize", "5")], "pagesize"),
        ([("page_size", "five")], "page_size"),
        ([("page_size", "1"), ("page_size", "2")], "page_size"),
        ([("filter", "x")], "filter"),
        ([("extra", "x")], "extra"),
        ([("flag", "yes")], "flag"),
        ([("color", "PURPLE")], "color"),
        ([("created_after", "yesterday")], "created_after"),
        ([("shelf", "s")], None),  # fine on binding 0: not bound there
    ],
)
def test_bad_query_parameters_are_400_naming_the_parameter(
    contract: RoutesContract, query: list[tuple[str, str]], names: str | None
) -> None:
    route = contract.route("ListThings")
    if names is None:
        assert decode(route, query=query).shelf == "s"
        return
    error = refused(route, query=query)
    assert error.status == "INVALID_ARGUMENT" and error.code == "INVALID_FIELD"
    assert names in error.message


def test_a_query_parameter_cannot_set_a_path_bound_field(contract: RoutesContract) -> None:
    error = refused(contract.route("ListThings", 1), params={"shelf": "s"}, query=[("shelf", "x")])
    assert "shelf" in error.message


def test_malformed_json_names_line_and_column(contract: RoutesContract) -> None:
    error = refused(contract.route("ArchiveThing"), body=b'{\n  "reason": "x",\n  oops\n}')
    assert error.code == "MALFORMED_JSON" and error.status == "INVALID_ARGUMENT"
    assert "line 3, column 3" in error.message
    assert error.details == {"line": 3, "column": 3}


@pytest.mark.parametrize("body", [b"NaN", b'{"ratio": Infinity}', b"\xff\xfe", b"[" * 100_000])
def test_other_non_json_bodies_are_400(contract: RoutesContract, body: bytes) -> None:
    assert refused(contract.route("ListThings", 2), body=body).code == "MALFORMED_JSON"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "lots"}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"reason": 5}, "reason"),
        ({"reasn": "typo"}, "reasn"),
    ],
)
def test_wrong_types_and_unknown_fields_are_400_naming_the_field(
    contract: RoutesContract, body: dict[str, object], field: str
) -> None:
    error = refused(contract.route("ArchiveThing"), body=body)
    assert error.code == "INVALID_FIELD" and field in error.message


def test_body_star_must_be_an_object(contract: RoutesContract) -> None:
    assert refused(contract.route("ArchiveThing"), body=[1, 2]).code == "INVALID_FIELD"


def test_patch_fills_the_mask_from_the_body_keys(contract: RoutesContract) -> None:
    message = decode(
        contract.route("UpdateThing"),
        params={"thing.id": "t1"},
        body={"name": "new", "filter": {"minSize": 3}},
    )
    assert message.thing.id == "t1" and message.thing.name == "new"
    assert list(message.update_mask.paths) == ["name", "filter.min_size"]


def test_patch_mask_stops_at_maps_lists_and_well_known_types(contract: RoutesContract) -> None:
    message = decode(
        contract.route("UpdateThing"),
        params={"thing.id": "t1"},
        body={
            "labels": {"a": "b"},
            "tags": ["x"],
            "created_at": "2024-01-01T00:00:00Z",
            "limit": 3,
            "filter": {},
        },
    )
    assert list(message.update_mask.paths) == ["labels", "tags", "created_at", "limit", "filter"]


def test_patch_keeps_a_mask_the_client_sent(contract: RoutesContract) -> None:
    message = decode(
        contract.route("UpdateThing"),
        params={"thing.id": "t1"},
        query=[("update_mask", "size")],
        body={"name": "new", "size": 4},
    )
    assert list(message.update_mask.paths) == ["size"]


def test_patch_with_a_body_naming_no_field_is_refused(contract: RoutesContract) -> None:
    error = refused(contract.route("UpdateThing"), params={"thing.id": "t1"}, body={})
    assert "no field" in error.message


def test_put_with_a_body_field_fills_no_mask(contract: RoutesContract) -> None:
    message = decode(contract.route("ReplaceThing"), params={"thing.id": "t"}, body={"name": "n"})
    assert not message.HasField("update_mask")


# ---- replies -------------------------------------------------------------------------


def test_replies_print_unpopulated_fields_and_int64_as_strings(
    contract: RoutesContract,
) -> None:
    module = contract.module
    reply = module.ListThingsResponse(things=[module.Thing(id="a", size=2**60)], total=3)
    body = json.loads(encode_response(contract.route("ListThings"), reply))
    assert body["next_page_token"] == "" and body["total"] == "3" and body["counts"] == {}
    (thing,) = body["things"]
    assert thing["size"] == str(2**60)
    assert thing["color"] == "COLOR_UNSPECIFIED" and thing["tags"] == []
    assert thing["count"] == "0" and thing["flag"] is False
    assert "created_at" not in thing and "filter" not in thing  # messages: only when set


def test_response_body_answers_with_that_field_only(contract: RoutesContract) -> None:
    module = contract.module
    route = contract.route("GetLabel")
    reply = module.LabelResponse(label=module.Label(text="hi"), ignored="x")
    assert json.loads(encode_response(route, reply)) == {"text": "hi"}
    assert json.loads(encode_response(route, module.LabelResponse())) == {"text": ""}


def test_empty_replies_are_an_empty_object(contract: RoutesContract) -> None:
    from google.protobuf import empty_pb2

    assert encode_response(contract.route("DeleteThing"), empty_pb2.Empty()) == b"{}"


def test_a_reply_round_trips_through_the_json_it_printed(contract: RoutesContract) -> None:
    module = contract.module
    thing = module.Thing(id="x", size=-5, color=module.COLOR_BLUE, labels={"k": "v"})
    thing.created_at.FromJsonString("2024-02-03T04:05:06Z")
    thing.ttl.FromSeconds(90)
    printed = json.loads(encode_response(contract.route("GetThing"), thing))
    assert printed["ttl"] == "90s" and printed["created_at"] == "2024-02-03T04:05:06Z"
    assert json_format.ParseDict(printed, module.Thing()) == thing
