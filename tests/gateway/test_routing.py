"""Routes derived from the test proto's annotations, and matching requests against
them: every template form, most-specific-first, custom verbs, 404 versus 405."""

from __future__ import annotations

import dataclasses

import pytest
from google.api import http_pb2

from gateway.contracts import PUBLIC_SERVICES
from gateway.transcoding.matcher import Match, Matcher, MethodNotAllowed
from gateway.transcoding.routes import RouteError, build_routes, http_rule, route_for
from gateway.transcoding.template import parse
from tests.gateway.conftest import RoutesContract


@pytest.fixture(scope="module")
def matcher(contract: RoutesContract) -> Matcher:
    return Matcher(contract.routes())


def match(matcher: Matcher, method: str, path: str) -> Match:
    found = matcher.match(method, path)
    assert isinstance(found, Match), f"{method} {path}: {found}"
    return found


def test_every_binding_of_every_annotated_method_is_a_route(contract: RoutesContract) -> None:
    routes = contract.routes()
    annotated = [m for m in contract.service.methods if http_rule(m) is not None]
    assert {r.method.name for r in routes} == {m.name for m in annotated}
    assert "Internal" not in {r.method.name for r in routes}
    listing = [(r.binding, r.http_method, r.path) for r in routes if r.method.name == "ListThings"]
    assert listing == [
        (0, "GET", "/v1/things"),
        (1, "GET", "/v1/shelves/{shelf}/things"),
        (2, "POST", "/v1/things:search"),
    ]
    assert [r.operation_id for r in routes if r.method.name == "ListThings"] == [
        "RouteTest_ListThings",
        "RouteTest_ListThings2",
        "RouteTest_ListThings3",
    ]


def test_the_four_public_services_give_one_route_per_binding() -> None:
    routes = build_routes(PUBLIC_SERVICES)
    rules = [
        rule
        for services in PUBLIC_SERVICES.values()
        for service in services
        for method in service.methods
        if (rule := http_rule(method)) is not None
    ]
    assert len(routes) == sum(1 + len(rule.additional_bindings) for rule in rules)
    assert len(routes) >= 37  # every row of API.md's route tables
    assert {r.upstream for r in routes} == {"auth", "wallet", "generation", "content"}
    update = next(r for r in routes if r.method.name == "UpdatePost")
    assert (update.http_method, update.body, update.mask_field) == ("PATCH", "post", "update_mask")


def test_single_segment_variable(matcher: Matcher) -> None:
    found = match(matcher, "GET", "/v1/things/abc")
    assert found.route.method.name == "GetThing"
    assert found.params == {"thing_id": "abc"}


def test_single_segment_values_are_percent_decoded(matcher: Matcher) -> None:
    found = match(matcher, "GET", "/v1/things/a%2Fb%20c")
    assert found.params == {"thing_id": "a/b c"}


def test_multi_segment_variable_keeps_its_slashes(matcher: Matcher) -> None:
    found = match(matcher, "GET", "/v1/shelves/1/books/2")
    assert found.route.method.name == "GetBook"
    assert found.params == {"name": "shelves/1/books/2"}
    assert matcher.match("GET", "/v1/shelves/1/tomes/2") is None


def test_double_wildcard_takes_the_rest_and_keeps_encoded_slashes(matcher: Matcher) -> None:
    found = match(matcher, "GET", "/v1/files/a/b%2Fc/d%20e")
    assert found.route.method.name == "GetFile"
    assert found.params == {"path": "a/b%2Fc/d e"}
    assert match(matcher, "GET", "/v1/files").params == {"path": ""}


def test_nested_field_variable(matcher: Matcher) -> None:
    found = match(matcher, "GET", "/v1/users/u1/profile")
    assert (found.route.method.name, found.params) == ("GetProfile", {"user.id": "u1"})


def test_custom_verb(matcher: Matcher) -> None:
    found = match(matcher, "POST", "/v1/things/t1:archive")
    assert found.route.method.name == "ArchiveThing"
    assert found.params == {"thing_id": "t1"}


def test_a_colon_that_is_no_known_verb_belongs_to_the_last_segment(matcher: Matcher) -> None:
    found = match(matcher, "GET", "/v1/things/t1:archive")
    assert found.route.method.name == "GetThing"
    assert found.params == {"thing_id": "t1:archive"}


def test_verb_on_a_literal_path_beside_the_plain_path(matcher: Matcher) -> None:
    assert match(matcher, "POST", "/v1/things:search").route.binding == 2
    assert match(matcher, "GET", "/v1/things").route.binding == 0


def test_additional_binding_with_its_own_variable(matcher: Matcher) -> None:
    found = match(matcher, "GET", "/v1/shelves/s9/things")
    assert (found.route.method.name, found.route.binding) == ("ListThings", 1)
    assert found.params == {"shelf": "s9"}


def test_body_field_route_with_a_multi_segment_parent(matcher: Matcher) -> None:
    found = match(matcher, "POST", "/v1/shelves/s1/books")
    assert (found.route.method.name, found.route.body) == ("CreateBook", "book")
    assert found.params == {"parent": "shelves/s1"}


def test_response_body_route(matcher: Matcher) -> None:
    found = match(matcher, "GET", "/v1/things/t1/label")
    assert (found.route.method.name, found.route.response_body) == ("GetLabel", "label")


def test_anonymous_wildcard_matches_without_binding(matcher: Matcher) -> None:
    found = match(matcher, "GET", "/v1/tags/red/things/t7")
    assert (found.route.method.name, found.params) == ("GetTagged", {"thing_id": "t7"})


def test_literal_beats_wildcard_beats_double_wildcard_in_any_order(
    contract: RoutesContract,
) -> None:
    base = contract.route("GetThing")
    rest, one, literal = (
        dataclasses.replace(base, template=parse(text))
        for text in ("/v1/{thing_id=**}", "/v1/things/{thing_id}", "/v1/things/special")
    )
    for order in ([rest, one, literal], [literal, one, rest], [one, rest, literal]):
        ordered = Matcher(order)
        assert match(ordered, "GET", "/v1/things/special").route is literal
        assert match(ordered, "GET", "/v1/things/other").route is one
        assert match(ordered, "GET", "/v1/things/a/b").route is rest
        assert match(ordered, "GET", "/v1/elsewhere").route is rest


def test_patch_put_and_delete_on_one_path(matcher: Matcher) -> None:
    assert match(matcher, "PATCH", "/v1/things/t1").route.mask_field == "update_mask"
    assert match(matcher, "PUT", "/v1/things/t1").route.mask_field == ""
    assert match(matcher, "DELETE", "/v1/things/t1").route.method.name == "DeleteThing"


def test_known_path_with_another_method_is_405_with_every_allowed_method(
    matcher: Matcher,
) -> None:
    found = matcher.match("POST", "/v1/things/t1")
    assert found == MethodNotAllowed(("DELETE", "GET", "PATCH", "PUT"))
    assert matcher.methods("/v1/things/t1") == {"DELETE", "GET", "PATCH", "PUT"}


def test_a_custom_verb_route_allows_only_its_own_methods(matcher: Matcher) -> None:
    """Not those of the plain path the colon could also belong to."""
    assert matcher.match("HEAD", "/v1/things/t1:archive") == MethodNotAllowed(("POST",))
    assert matcher.match("HEAD", "/v1/things:search") == MethodNotAllowed(("POST",))


@pytest.mark.parametrize(
    "path", ["/v1/nothing", "/v1/things/", "/v1//things", "/v1/things/a/b/c", "v1/things", ""]
)
def test_unknown_paths_match_nothing(matcher: Matcher, path: str) -> None:
    assert matcher.match("GET", path) is None


def test_two_rpcs_on_one_method_and_template_refuse_to_start(contract: RoutesContract) -> None:
    routes = contract.routes()
    get_thing = next(r for r in routes if r.method.name == "GetThing")
    clash = dataclasses.replace(get_thing, method=contract.service.methods_by_name["GetTagged"])
    with pytest.raises(RouteError, match="already bound"):
        Matcher([*routes, clash])


def test_annotations_naming_missing_fields_refuse_to_start(contract: RoutesContract) -> None:
    method = contract.service.methods_by_name["GetThing"]
    for bad in (
        http_pb2.HttpRule(get="/v1/x/{nope}"),
        http_pb2.HttpRule(post="/v1/x", body="nope"),
        http_pb2.HttpRule(get="/v1/x", response_body="nope"),
        http_pb2.HttpRule(get="/v1/{thing_id=**}/x"),
    ):
        with pytest.raises(RouteError):
            route_for("test", contract.service, method, bad, 0)


def test_a_streaming_route_knows_its_events_and_refuses_response_body(
    contract: RoutesContract,
) -> None:
    watch = contract.route("WatchThing")
    assert watch.stream is not None
    # `optional string hint`'s synthetic oneof names no event.
    assert watch.stream.event_names == ("thing", "label", "note", "count")
    assert (watch.stream.event_id, watch.stream.last_event_id) == (True, True)
    stream = contract.route("StreamThings").stream
    assert stream is not None and stream.event_names == ("message",)
    assert (stream.event_id, stream.last_event_id) == (False, False)
    assert contract.route("GetThing").stream is None
    method = contract.service.methods_by_name["WatchThing"]
    with pytest.raises(RouteError, match="response_body"):
        route_for(
            "test",
            contract.service,
            method,
            http_pb2.HttpRule(get="/v1/w", response_body="note"),
            0,
        )
