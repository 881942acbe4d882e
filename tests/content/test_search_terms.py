"""The pure parts of search: what a query becomes (plain words, maybe a prefix),
its refusals, and the highlighted snippet."""

from __future__ import annotations

import pytest

from kit.errors import InvalidArgument
from services.content.search import query_terms, search_type, snippet
from services.content.store.search import Terms


@pytest.mark.parametrize(
    ("q", "words", "prefix"),
    [
        ("Climate", ("climate",), True),
        ("climate change ", ("climate", "change"), False),
        ('"climate" NEAR(change*)', ("climate", "near", "change"), False),
        ("a:b & c|d", ("a", "b", "c", "d"), True),
        ("café Café", ("café",), True),
        ("snake_case", ("snake", "case"), True),
    ],
)
def test_queries_become_plain_words(q: str, words: tuple[str, ...], prefix: bool) -> None:
    assert query_terms(q) == Terms(words, prefix)


@pytest.mark.parametrize(
    "q", ["", "   ", "*** :: &&", "x" * 201, " ".join(f"w{i}" for i in range(17))]
)
def test_refused_queries(q: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        query_terms(q)
    assert (caught.value.reason, caught.value.details["field"]) == ("INVALID_QUERY", "q")


def test_search_type() -> None:
    assert search_type("lessons").value == "lessons"
    with pytest.raises(InvalidArgument) as caught:
        search_type("chats")
    assert caught.value.reason == "INVALID_SEARCH_TYPE"


def test_snippet_marks_matches_and_escapes() -> None:
    terms = Terms(("rain", "fore"), prefix=True)
    body = "x " * 100 + "The <b>rain</b> in the forest, rainy rain." + " y" * 200
    text = snippet(terms, body, "title")
    assert text.startswith("…") and text.endswith("…")
    assert "&lt;b&gt;<mark>rain</mark>&lt;/b&gt;" in text
    assert "<mark>forest</mark>" in text
    # A whole word only, except the last (a prefix): "rainy" is not "rain".
    assert "<mark>rainy</mark>" not in text and "rainy" in text
    assert len(text) < 260
    # No body match: the title, from its start.
    assert snippet(Terms(("title",), prefix=False), "nothing here", "A title") == (
        "A <mark>title</mark>"
    )
