// Server-Sent Events read from a fetch() body, for the streams EventSource cannot
// open (a POST with a JSON body, like `messages:stream`) or should not (where the
// app wants to choose when and how to resume). The parsing follows the HTML
// standard's "event stream interpretation": lines end in CRLF, LF or CR (also
// when a chunk boundary falls between CR and LF); `:` lines are comments
// (heartbeats); a blank line dispatches the message; a message with no `data:`
// is not dispatched; the last event id persists from message to message; what is
// left unterminated at the end of the stream is dropped.

export interface SseMessage {
  /** The `event:` field, "message" when the message has none. */
  event: string;
  /** The `data:` lines joined with "\n". */
  data: string;
  /** The last event id at this message (set by this or an earlier `id:`), "" if none. */
  lastEventId: string;
  /** Whether this message carried an `id:` of its own. */
  hasId: boolean;
}

/** An incremental event-stream parser: push text as it arrives, get whole messages. */
export class SseParser {
  /** The stream's last event id: what to send back as `Last-Event-ID` to resume. */
  lastEventId = "";
  /** The reconnection delay the server asked for with `retry:`, in ms (null if none). */
  retryMs: number | null = null;
  private pending = "";
  private skipLineFeed = false;
  private event = "";
  private data: string[] = [];
  private hasId = false;
  private started = false;

  /** Feed decoded text; returns the messages it completed. */
  push(text: string): SseMessage[] {
    if (!this.started && text) {
      this.started = true;
      if (text.startsWith("\uFEFF")) text = text.slice(1);
    }
    if (this.skipLineFeed && text.startsWith("\n")) text = text.slice(1);
    this.skipLineFeed = false;
    const out: SseMessage[] = [];
    let buffer = this.pending + text;
    for (;;) {
      const end = buffer.search(/[\r\n]/);
      if (end < 0) break;
      const line = buffer.slice(0, end);
      if (buffer[end] === "\r") {
        if (end + 1 === buffer.length) {
          // CR at the end of what we have: its LF may start the next chunk.
          this.skipLineFeed = true;
          buffer = "";
        } else {
          buffer = buffer.slice(buffer[end + 1] === "\n" ? end + 2 : end + 1);
        }
      } else {
        buffer = buffer.slice(end + 1);
      }
      const message = this.line(line);
      if (message) out.push(message);
    }
    this.pending = buffer;
    return out;
  }

  private line(line: string): SseMessage | null {
    if (line === "") return this.dispatch();
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) {
      this.lastEventId = value;
      this.hasId = true;
    } else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
    return null;
  }

  private dispatch(): SseMessage | null {
    const message: SseMessage | null = this.data.length
      ? { event: this.event || "message", data: this.data.join("\n"), lastEventId: this.lastEventId, hasId: this.hasId }
      : null;
    this.event = "";
    this.data = [];
    this.hasId = false;
    return message;
  }
}

/** Read a text/event-stream body to its end, calling `onMessage` for each message.
 *  Returns the stream's last event id. Rejects when the connection fails (or the
 *  request's AbortSignal fires) — the caller decides whether to resume. */
export async function readEventStream(
  body: ReadableStream<Uint8Array>,
  onMessage: (message: SseMessage) => void,
  parser: SseParser = new SseParser(),
): Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const message of parser.push(decoder.decode(value, { stream: true }))) onMessage(message);
    }
    for (const message of parser.push(decoder.decode())) onMessage(message);
  } catch (error) {
    // A failed read, or `onMessage` gave up: let go of the connection either way.
    await reader.cancel(error).catch(() => {});
    throw error;
  }
  return parser.lastEventId;
}
