import { describe, expect, it } from "vitest";
import { searchable, splitSnippet, unescapeHtml } from "./search";

describe("splitSnippet", () => {
  it("marks the words between <mark> and </mark>", () => {
    expect(splitSnippet("a <mark>red</mark> kite over <mark>red</mark> roofs")).toEqual([
      { text: "a ", mark: false },
      { text: "red", mark: true },
      { text: " kite over ", mark: false },
      { text: "red", mark: true },
      { text: " roofs", mark: false },
    ]);
  });

  it("decodes the escaped text and never yields markup other than the marks", () => {
    const parts = splitSnippet("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; <mark>tom&#x27;s</mark>");
    expect(parts).toEqual([
      { text: '<script>alert("x")</script> & ', mark: false },
      { text: "tom's", mark: true },
    ]);
  });

  it("keeps a literal (escaped) &lt;mark&gt; as text", () => {
    expect(splitSnippet("&lt;mark&gt;no&lt;/mark&gt;")).toEqual([{ text: "<mark>no</mark>", mark: false }]);
  });

  it("drops empty pieces and joins neighbours of the same kind", () => {
    expect(splitSnippet("<mark>one</mark><mark> two</mark>")).toEqual([{ text: "one two", mark: true }]);
    expect(splitSnippet("")).toEqual([]);
    expect(splitSnippet("plain")).toEqual([{ text: "plain", mark: false }]);
  });
});

describe("unescapeHtml", () => {
  it("decodes named and numeric entities and leaves unknown ones", () => {
    expect(unescapeHtml("&#39;&#x41;&gt;&bogus;")).toBe("'A>&bogus;");
  });
});

describe("searchable", () => {
  it("needs some non-blank words", () => {
    expect(searchable("  ")).toBe(false);
    expect(searchable(" kite ")).toBe(true);
  });
});
