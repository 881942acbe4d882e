// Search results' snippets: HTML-escaped text with `<mark>` … `</mark>` around each
// matched word (SearchHit.snippet). They are never given to innerHTML: split into
// plain-text pieces (entities decoded) and marked pieces, each rendered as text.

export interface SnippetPart {
  text: string;
  mark: boolean;
}

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0" };

/** The text an HTML-escaped string stands for ("&lt;b&gt;" → "<b>"); unknown entities stay as written. */
export function unescapeHtml(text: string): string {
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name: string) => {
    if (name.startsWith("#")) {
      const code = name[1] === "x" || name[1] === "X" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return Number.isFinite(code) && code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return ENTITIES[name.toLowerCase()] ?? whole;
  });
}

/** A snippet as pieces of text, the matched ones with `mark` true; empty pieces dropped. */
export function splitSnippet(snippet: string): SnippetPart[] {
  const parts: SnippetPart[] = [];
  let mark = false;
  for (const piece of snippet.split(/(<mark>|<\/mark>)/i)) {
    const tag = piece.toLowerCase();
    if (tag === "<mark>") mark = true;
    else if (tag === "</mark>") mark = false;
    else if (piece) {
      const text = unescapeHtml(piece);
      const last = parts.at(-1);
      if (last && last.mark === mark) last.text += text;
      else parts.push({ text, mark });
    }
  }
  return parts;
}

export type SearchType = "posts" | "lessons";

/** The query is worth sending: some non-blank words. */
export function searchable(q: string): boolean {
  return q.trim().length > 0;
}
