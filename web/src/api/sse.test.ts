import { describe, expect, it } from "vitest";
import { readEventStream, SseParser, type SseMessage } from "./sse";

const pushAll = (parser: SseParser, chunks: string[]) => chunks.flatMap((c) => parser.push(c));

describe("SseParser", () => {
  it("dispatches a message on a blank line, with its event, data and id", () => {
    const parser = new SseParser();
    expect(parser.push('event: delta\nid: 5\ndata: {"text":"hello"}\n\n')).toEqual([
      { event: "delta", data: '{"text":"hello"}', lastEventId: "5", hasId: true },
    ]);
    expect(parser.lastEventId).toBe("5");
  });

  it("joins data lines, defaults the event to message and skips comments", () => {
    const parser = new SseParser();
    expect(parser.push(": heartbeat\n\ndata: one\n: hb\ndata: two\n\n")).toEqual([
      { event: "message", data: "one\ntwo", lastEventId: "", hasId: false },
    ]);
  });

  it("keeps the last event id across messages that have none", () => {
    const parser = new SseParser();
    const out = parser.push("id: 3\ndata: a\n\nevent: job\ndata: b\n\n");
    expect(out.map((m) => [m.lastEventId, m.hasId])).toEqual([
      ["3", true],
      ["3", false],
    ]);
  });

  it("reads messages split anywhere across chunks", () => {
    const text = 'event: snapshot\nid: 11\ndata: {"text":"hello world"}\n\nevent: job\ndata: {"status":"SUCCEEDED"}\n\n';
    for (let cut = 1; cut < text.length; cut++) {
      const parser = new SseParser();
      const out = pushAll(parser, [text.slice(0, cut), text.slice(cut)]);
      expect(out.map((m) => m.event)).toEqual(["snapshot", "job"]);
      expect(out[0]?.data).toBe('{"text":"hello world"}');
    }
  });

  it("accepts CRLF and CR line ends, also with CR and LF in different chunks", () => {
    const parser = new SseParser();
    const out = pushAll(parser, ["data: a\r", "\n\r", "\ndata: b\r\rdata: c\r\n\r\n"]);
    expect(out.map((m) => m.data)).toEqual(["a", "b", "c"]);
  });

  it("drops a message with no data, a leading BOM and one space after the colon only", () => {
    const parser = new SseParser();
    expect(parser.push("\uFEFFevent: nothing\n\ndata:  two spaces\ndata:none\nretry: 3000\n\n")).toEqual([
      { event: "message", data: " two spaces\nnone", lastEventId: "", hasId: false },
    ]);
    expect(parser.retryMs).toBe(3000);
  });

  it("leaves an unterminated message undispatched", () => {
    const parser = new SseParser();
    expect(parser.push("data: half")).toEqual([]);
    expect(parser.push("")).toEqual([]);
  });
});

function body(chunks: (string | Uint8Array)[], failAfter = false): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const queue = [...chunks];
  return new ReadableStream({
    pull(controller) {
      const next = queue.shift();
      if (next !== undefined) controller.enqueue(typeof next === "string" ? encoder.encode(next) : next);
      else if (failAfter) controller.error(new TypeError("network error"));
      else controller.close();
    },
  });
}

describe("readEventStream", () => {
  it("decodes UTF-8 split inside a character and returns the last event id", async () => {
    const bytes = new TextEncoder().encode("id: 2\ndata: “é”\n\n");
    const seen: SseMessage[] = [];
    const last = await readEventStream(body([bytes.slice(0, 13), bytes.slice(13)]), (m) => seen.push(m));
    expect(seen.map((m) => m.data)).toEqual(["“é”"]);
    expect(last).toBe("2");
  });

  it("rejects when the connection fails, after the messages that arrived", async () => {
    const seen: string[] = [];
    await expect(readEventStream(body(["data: a\n\n", "data: b"], true), (m) => seen.push(m.data))).rejects.toThrow(
      "network error",
    );
    expect(seen).toEqual(["a"]);
  });
});
