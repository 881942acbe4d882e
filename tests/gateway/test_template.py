"""Parsing google.api.http path templates: every form of the grammar, and the
templates that break it."""

from __future__ import annotations

import pytest

from gateway.transcoding.template import Kind, TemplateError, parse


def test_literal_segments_only() -> None:
    template = parse("/v1/wallet/transactions")
    assert [str(s) for s in template.segments] == ["v1", "wallet", "transactions"]
    assert template.variables == () and template.verb == ""


def test_a_bare_variable_is_one_segment() -> None:
    template = parse("/v1/posts/{post_id}")
    (variable,) = template.variables
    assert (variable.field_path, variable.start, variable.end) == ("post_id", 2, 3)
    assert template.segments[2].kind is Kind.ONE
    assert not variable.multi_segment


def test_a_variable_with_a_pattern_spans_its_segments() -> None:
    template = parse("/v1/{name=shelves/*/books/*}")
    (variable,) = template.variables
    assert (variable.start, variable.end) == (1, 5)
    assert variable.multi_segment and variable.pattern_text == "shelves/*/books/*"
    assert [str(s) for s in template.segments] == ["v1", "shelves", "*", "books", "*"]


def test_a_double_wildcard_variable_runs_to_the_end() -> None:
    template = parse("/v1/files/{path=**}")
    (variable,) = template.variables
    assert (variable.start, variable.end) == (2, None)
    assert template.segments[-1].kind is Kind.REST


def test_the_verb_is_split_off_after_the_last_segment() -> None:
    template = parse("/v1/generations/{job_id}:cancel")
    assert template.verb == "cancel"
    assert template.field_paths == ("job_id",)
    assert parse("/v1/things:search").verb == "search"


def test_dotted_field_paths_and_anonymous_wildcards() -> None:
    template = parse("/v1/tags/*/users/{user.id}")
    assert template.field_paths == ("user.id",)
    assert template.segments[2].kind is Kind.ONE
    assert template.variables[0].start == 4


@pytest.mark.parametrize(
    "text",
    [
        "v1/no/leading/slash",
        "/v1/{unclosed",
        "/v1/{a={b}}",
        "/v1/**/more",
        "/v1/{x=**}/tail",
        "/v1/{bad-name}",
        "/v1/{x}/{x}",
        "/v1/a b",
        "/v1/x:",
    ],
)
def test_templates_that_break_the_grammar_are_refused(text: str) -> None:
    with pytest.raises(TemplateError):
        parse(text)
