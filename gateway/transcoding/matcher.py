"""Matching a request path against every route at once: a trie of path segments
(literal children, one `*` child, and `**` endings), searched most specific first —
a literal beats `*`, which beats `**` — so the order of the annotations never matters.

Paths are matched on their raw (still percent-encoded) form, split at `/`: a `%2F`
inside a segment stays part of that segment. A trailing `:verb` is tried first as a
custom verb and then, if nothing with that verb matches, as part of the last segment
(so `GET /v1/posts/a:b` can still reach `/v1/posts/{post_id}`), as grpc-gateway does."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote

from gateway.transcoding.routes import Route, RouteError
from gateway.transcoding.template import Kind

ByMethod = dict[str, Route]


@dataclass
class _Node:
    literals: dict[str, _Node] = field(default_factory=dict)
    one: _Node | None = None
    ends: dict[str, ByMethod] = field(default_factory=dict)  # verb -> method -> route
    rest: dict[str, ByMethod] = field(default_factory=dict)  # `**` endings, same shape


@dataclass(frozen=True)
class Match:
    route: Route
    params: dict[str, str]  # field path -> decoded value


@dataclass(frozen=True)
class MethodNotAllowed:
    allow: tuple[str, ...]


class Matcher:
    def __init__(self, routes: list[Route]) -> None:
        self.root = _Node()
        for route in routes:
            self._insert(route)

    def _insert(self, route: Route) -> None:
        node = self.root
        endings = node.ends
        for segment in route.template.segments:
            if segment.kind is Kind.REST:
                endings = node.rest
                break
            if segment.kind is Kind.LITERAL:
                node = node.literals.setdefault(segment.literal, _Node())
            else:
                if node.one is None:
                    node.one = _Node()
                node = node.one
            endings = node.ends
        by_method = endings.setdefault(route.template.verb, {})
        taken = by_method.get(route.http_method)
        if taken is not None:
            raise RouteError(
                f"{route.http_method} {route.template.text} of {route.full_name} is already "
                f"bound by {taken.full_name} ({taken.template.text})"
            )
        by_method[route.http_method] = route

    def match(self, method: str, raw_path: str) -> Match | MethodNotAllowed | None:
        """The route for `method` on `raw_path`; else the methods the path allows
        (405), or None when no route has this path (404). The methods allowed are
        those of the first reading with routes: on `/v1/things/t1:archive` the
        verb's, not also those of `/v1/things/{thing_id}`."""
        allowed: set[str] = set()
        for raw, decoded, verb in _readings(raw_path):
            reading: set[str] = set()
            for by_method in self._candidates(decoded, verb):
                route = by_method.get(method)
                if route is not None:
                    return Match(route, _bind(route, raw))
                reading.update(by_method)
            allowed = allowed or reading
        return MethodNotAllowed(tuple(sorted(allowed))) if allowed else None

    def methods(self, raw_path: str) -> frozenset[str]:
        """Every method some route accepts on this path (CORS preflights)."""
        found: set[str] = set()
        for _, decoded, verb in _readings(raw_path):
            for by_method in self._candidates(decoded, verb):
                found.update(by_method)
        return frozenset(found)

    def _candidates(self, segments: list[str], verb: str) -> Iterator[ByMethod]:
        def walk(node: _Node, index: int) -> Iterator[ByMethod]:
            if index == len(segments):
                if verb in node.ends:
                    yield node.ends[verb]
            else:
                child = node.literals.get(segments[index])
                if child is not None:
                    yield from walk(child, index + 1)
                if node.one is not None and segments[index]:
                    yield from walk(node.one, index + 1)
            if verb in node.rest:
                yield node.rest[verb]

        return walk(self.root, 0)


def _readings(raw_path: str) -> Iterator[tuple[list[str], list[str], str]]:
    """(raw segments, decoded segments, verb): with the custom verb split off the
    last segment first, then without."""
    if not raw_path.startswith("/"):
        return
    raw = raw_path[1:].split("/")
    head, colon, verb = raw[-1].rpartition(":")
    if colon and verb:
        with_verb = [*raw[:-1], head]
        yield with_verb, [unquote(s) for s in with_verb], unquote(verb)
    yield raw, [unquote(s) for s in raw], ""


def _bind(route: Route, raw: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for variable in route.template.variables:
        covered = raw[variable.start : variable.end]
        if variable.multi_segment:
            # Reserved expansion: a multi-segment value keeps its '/' separators, and
            # an encoded slash stays encoded so it cannot forge a separator.
            params[variable.field_path] = "/".join(_unquote_keep_slash(s) for s in covered)
        else:
            params[variable.field_path] = unquote(covered[0])
    return params


def _unquote_keep_slash(segment: str) -> str:
    return unquote(segment.replace("%2F", "%252F").replace("%2f", "%252f"))
