"""Path templates of `google.api.http` rules (google/api/http.proto):

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

`{x}` is `{x=*}`. `*` matches one non-empty segment, `**` zero or more (only as the
last segment). A variable remembers which segments it covers, so the matcher can cut
its value out of a concrete path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# RFC 3986 pchar minus the characters the grammar itself uses ("/", "{", "}", ":",
# "*" and "=" have meaning; a literal may contain the rest).
_LITERAL = re.compile(r"^[A-Za-z0-9\-._~!$&'()+,;@%]+$")


class TemplateError(ValueError):
    """A path template does not follow the grammar."""


class Kind(Enum):
    LITERAL = "literal"
    ONE = "*"  # exactly one segment
    REST = "**"  # zero or more segments, last only


@dataclass(frozen=True)
class Segment:
    kind: Kind
    literal: str = ""

    def __str__(self) -> str:
        return self.literal if self.kind is Kind.LITERAL else self.kind.value


@dataclass(frozen=True)
class Variable:
    """`field_path` captures segments[start:end]; `end` None means to the end of
    the path (the variable ends in `**`)."""

    field_path: str
    start: int
    end: int | None
    pattern: tuple[Segment, ...]

    @property
    def multi_segment(self) -> bool:
        return self.end is None or self.end - self.start > 1

    @property
    def pattern_text(self) -> str:
        return "/".join(str(s) for s in self.pattern)


@dataclass(frozen=True)
class PathTemplate:
    text: str
    segments: tuple[Segment, ...]
    variables: tuple[Variable, ...]
    verb: str

    @property
    def field_paths(self) -> tuple[str, ...]:
        return tuple(v.field_path for v in self.variables)


def parse(text: str) -> PathTemplate:
    if not text.startswith("/"):
        raise TemplateError(f"{text!r}: a template starts with '/'")
    body, verb = _split_verb(text)
    segments: list[Segment] = []
    variables: list[Variable] = []
    for part in _split_top_level(body[1:], text):
        if part.startswith("{"):
            if not part.endswith("}"):
                raise TemplateError(f"{text!r}: unclosed variable {part!r}")
            variables.append(_variable(part[1:-1], len(segments), text, segments))
        else:
            segments.append(_segment(part, text))
    for index, segment in enumerate(segments):
        if segment.kind is Kind.REST and index != len(segments) - 1:
            raise TemplateError(f"{text!r}: '**' must be the last segment")
    names = [v.field_path for v in variables]
    if len(set(names)) != len(names):
        raise TemplateError(f"{text!r}: a field is bound twice")
    return PathTemplate(text, tuple(segments), tuple(variables), verb)


def _split_verb(text: str) -> tuple[str, str]:
    """The verb is a ':' after the last '/' that is outside any variable."""
    depth = 0
    colon = -1
    for index, char in enumerate(text):
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        elif char == "/" and depth == 0:
            colon = -1
        elif char == ":" and depth == 0:
            colon = index
    if colon < 0:
        return text, ""
    verb = text[colon + 1 :]
    if not _LITERAL.match(verb):
        raise TemplateError(f"{text!r}: bad verb {verb!r}")
    return text[:colon], verb


def _split_top_level(body: str, text: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in body:
        if char == "{":
            depth += 1
            if depth > 1:
                raise TemplateError(f"{text!r}: variables cannot nest")
        elif char == "}":
            depth -= 1
            if depth < 0:
                raise TemplateError(f"{text!r}: unbalanced '}}'")
        if char == "/" and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise TemplateError(f"{text!r}: unclosed variable")
    parts.append(current)
    return parts


def _segment(part: str, text: str) -> Segment:
    if part == "*":
        return Segment(Kind.ONE)
    if part == "**":
        return Segment(Kind.REST)
    if not _LITERAL.match(part):
        raise TemplateError(f"{text!r}: bad segment {part!r}")
    return Segment(Kind.LITERAL, part)


def _variable(inner: str, start: int, text: str, segments: list[Segment]) -> Variable:
    field_path, _, pattern_text = inner.partition("=")
    if not all(_IDENT.match(name) for name in field_path.split(".")):
        raise TemplateError(f"{text!r}: bad field path {field_path!r}")
    pattern = tuple(_segment(p, text) for p in (pattern_text or "*").split("/"))
    segments.extend(pattern)
    end = None if pattern[-1].kind is Kind.REST else start + len(pattern)
    return Variable(field_path, start, end, pattern)
