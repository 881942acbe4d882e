// Full-text search of published public posts and published lessons (GET /v1/search).
import { type FormEvent, useState } from "react";
import type { Schemas } from "../api/client";
import { ErrorText, Field, Page, useAction } from "../components";
import { formatStatus, formatTime } from "../format";
import { searchable, type SearchType, splitSnippet } from "../search";
import { useSession } from "../session";
import { PostMedia } from "./Feed";

type Hit = Schemas["klik.content.v1.SearchHit"];

/** A snippet with its matched words in <mark>, every piece rendered as text. */
export function Snippet({ snippet }: { snippet: string }) {
  return (
    <p className="snippet">
      {splitSnippet(snippet).map((part, i) => (part.mark ? <mark key={i}>{part.text}</mark> : <span key={i}>{part.text}</span>))}
    </p>
  );
}

interface Results {
  q: string;
  type: SearchType;
  hits: Hit[];
  next: string;
}

export function SearchPage() {
  const { api } = useSession();
  const [q, setQ] = useState("");
  const [type, setType] = useState<SearchType>("posts");
  const [results, setResults] = useState<Results | null>(null);

  const fetchPage = (query: string, kind: SearchType, pageToken: string) =>
    api.call((c) => c.GET("/v1/search", { params: { query: { q: query, type: kind, page_size: 20, page_token: pageToken } } }));

  const search = useAction(async (query: string, kind: SearchType) => {
    if (!searchable(query)) {
      setResults(null);
      return;
    }
    const page = await fetchPage(query.trim(), kind, "");
    setResults({ q: query.trim(), type: kind, hits: page.hits ?? [], next: page.next_page_token ?? "" });
  });
  const more = useAction(async () => {
    if (!results?.next) return;
    const page = await fetchPage(results.q, results.type, results.next);
    setResults({ ...results, hits: [...results.hits, ...(page.hits ?? [])], next: page.next_page_token ?? "" });
  });
  const choose = (kind: SearchType) => {
    setType(kind);
    if (searchable(q)) void search.run(q, kind);
  };

  return (
    <Page title="Search">
      <form
        className="card"
        role="search"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void search.run(q, type);
        }}
      >
        <Field label="Search for" hint="Published public posts and published lessons.">
          {(id) => <input id={id} type="search" required maxLength={200} value={q} onChange={(e) => setQ(e.target.value)} />}
        </Field>
        <fieldset className="toggle">
          <legend>Look in</legend>
          {(["posts", "lessons"] as const).map((kind) => (
            <label key={kind}>
              <input type="radio" name="search-type" value={kind} checked={type === kind} onChange={() => choose(kind)} />{" "}
              {kind === "posts" ? "Posts" : "Lessons"}
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={search.busy}>
          Search
        </button>
      </form>
      <ErrorText error={search.error} />
      <div aria-live="polite" aria-busy={search.busy}>
        {results ? (
          results.hits.length === 0 ? (
            <p data-testid="search-empty">
              No {results.type} match “{results.q}”. Try other or fewer words.
            </p>
          ) : (
            <p className="hint">
              {results.type === "posts" ? "Posts" : "Lessons"} matching “{results.q}”, best first
              {results.next ? "" : ` · ${results.hits.length} in all`}
            </p>
          )
        ) : null}
      </div>
      <ul className="list" aria-label="Search results">
        {(results?.hits ?? []).map((hit, i) => (
          <li key={hit.post?.id ?? hit.lesson?.id ?? i} className="card" data-testid="search-hit">
            {hit.post ? (
              <>
                <h2>{hit.post.title}</h2>
                <p className="hint">
                  {hit.post.author?.display_name || "Someone"} ·{" "}
                  <time dateTime={hit.post.created_at}>{formatTime(hit.post.created_at)}</time>
                </p>
                {hit.snippet ? <Snippet snippet={hit.snippet} /> : null}
                <PostMedia post={hit.post} />
              </>
            ) : hit.lesson ? (
              <>
                <h2>{hit.lesson.topic}</h2>
                <p className="hint">
                  {formatStatus(hit.lesson.content_type)} · difficulty {hit.lesson.difficulty}
                </p>
                {hit.snippet ? <Snippet snippet={hit.snippet} /> : null}
              </>
            ) : null}
          </li>
        ))}
      </ul>
      <ErrorText error={more.error} />
      {results?.next ? (
        <button type="button" className="secondary" onClick={() => void more.run()} disabled={more.busy}>
          {more.busy ? "Loading…" : "Load more"}
        </button>
      ) : null}
    </Page>
  );
}
