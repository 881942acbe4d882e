import { describe, expect, it } from "vitest";
import { ApiError } from "./errors";
import { applyJobEvent, codePoints, followJob, initialJobStream, type JobStreamState } from "./jobStream";
import type { SseMessage } from "./sse";

const msg = (event: string, data: object, id?: string): SseMessage => ({
  event,
  data: JSON.stringify(data),
  lastEventId: id ?? "",
  hasId: id !== undefined,
});

const sse = (event: string, data: object, id?: string) =>
  `event: ${event}\n${id !== undefined ? `id: ${id}\n` : ""}data: ${JSON.stringify(data)}\n\n`;

/** A response body that sends `chunks`, then ends (or fails, like a dropped connection). */
function body(chunks: string[], drop = false): ReadableStream<Uint8Array> {
  const queue = [...chunks];
  const encoder = new TextEncoder();
  return new ReadableStream({
    pull(controller) {
      const next = queue.shift();
      if (next !== undefined) controller.enqueue(encoder.encode(next));
      else if (drop) controller.error(new TypeError("network error"));
      else controller.close();
    },
  });
}

const apply = (messages: SseMessage[]) => messages.reduce(applyJobEvent, initialJobStream());

describe("applyJobEvent", () => {
  it("builds the reply from sent, snapshot, deltas and the final job", () => {
    const state = apply([
      msg("sent", { message: { id: "m1", role: "user", content: "hi" }, job_id: "j1" }),
      msg("job", { id: "j1", status: "RUNNING" }),
      msg("snapshot", { text: "Hello" }, "5"),
      msg("delta", { text: " world", offset: "5", tokens: "2", cost_credits: "1" }, "11"),
    ]);
    expect(state).toMatchObject({ jobId: "j1", text: "Hello world", tokens: "2", cost: "1", lastEventId: "11", done: false });
    expect(state.sent?.content).toBe("hi");
    const final = applyJobEvent(state, msg("job", { id: "j1", status: "SUCCEEDED", cost_credits: "3", result: { text: "Hello world." } }));
    expect(final).toMatchObject({ text: "Hello world.", cost: "3", done: true, lastEventId: "11" });
  });

  it("keeps the text so far when a cancelled job ends, and the running cost when the job says 0", () => {
    let state = apply([msg("snapshot", { text: "Half" }, "4"), msg("delta", { text: "", offset: "4", cost_credits: "1" }, "4")]);
    state = applyJobEvent(state, msg("job", { id: "j1", status: "CANCELLED", cost_credits: "0", result: {} }));
    expect(state).toMatchObject({ text: "Half", cost: "1", done: true });
  });

  it("counts offsets in code points and lets an overlapping delta win from its offset", () => {
    expect(codePoints("a😀b")).toBe(3);
    const state = apply([
      msg("snapshot", { text: "😀 abc" }, "5"),
      msg("delta", { text: "XYZ", offset: "3" }, "6"),
    ]);
    expect(state.text).toBe("😀 aXYZ");
  });

  it("throws the error a stream ends with, in the API's shape", () => {
    const error = { error: { code: "TOKEN_EXPIRED", status: "UNAUTHENTICATED", message: "token expired" } };
    let thrown: unknown;
    try {
      apply([msg("error", error)]);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ApiError);
    expect(thrown).toMatchObject({ code: "TOKEN_EXPIRED", httpStatus: 401 });
  });

  it("ignores events it does not know and data that is not JSON", () => {
    const state = initialJobStream("j1");
    expect(applyJobEvent(state, { event: "other", data: "{}", lastEventId: "", hasId: false })).toBe(state);
    expect(applyJobEvent(state, { event: "delta", data: "nope", lastEventId: "", hasId: false })).toBe(state);
  });
});

describe("followJob", () => {
  const noWait = () => 0;

  it("resumes a dropped stream with :watch from the last event id, with no gap and no repeat", async () => {
    const resumed: string[] = [];
    const updates: JobStreamState[] = [];
    const final = await followJob({
      open: async () =>
        body([sse("sent", { job_id: "j1", message: { id: "m1" } }), sse("delta", { text: "Hello", offset: "0" }, "5")], true),
      resume: async (jobId, last) => {
        resumed.push(`${jobId}@${last}`);
        return body([
          sse("job", { id: "j1", status: "RUNNING" }),
          sse("delta", { text: " again", offset: "5" }, "11"),
          sse("job", { id: "j1", status: "SUCCEEDED", cost_credits: "2", result: { text: "Hello again" } }),
        ]);
      },
      onUpdate: (s) => updates.push(s),
      retryDelay: noWait,
    });
    expect(resumed).toEqual(["j1@5"]);
    expect(final).toMatchObject({ text: "Hello again", done: true, cost: "2" });
    // The text grew event by event before the job ended.
    expect(updates.map((u) => u.text).filter((t, i, all) => t !== all[i - 1])).toEqual(["", "Hello", "Hello again"]);
  });

  it("re-sends the first request (same idempotency key) when it drops before naming its job", async () => {
    let opened = 0;
    const final = await followJob({
      open: async () => {
        opened++;
        if (opened === 1) throw new TypeError("failed to fetch");
        return body([sse("sent", { job_id: "j2" }), sse("job", { id: "j2", status: "SUCCEEDED", result: { text: "ok" } })]);
      },
      resume: async () => {
        throw new Error("not resumed");
      },
      onUpdate: () => {},
      retryDelay: noWait,
    });
    expect([opened, final.text]).toEqual([2, "ok"]);
  });

  it("rejects with the refusal of the first request (e.g. not enough credits)", async () => {
    const refused = new ApiError(402, "INSUFFICIENT_CREDITS", "FAILED_PRECONDITION", "need 5");
    await expect(
      followJob({ open: async () => Promise.reject(refused), resume: async () => body([]), onUpdate: () => {}, retryDelay: noWait }),
    ).rejects.toBe(refused);
  });

  it("resumes after an UNAVAILABLE error event and restarts from a snapshot after INVALID_EVENT_ID", async () => {
    const seen: string[] = [];
    const unavailable = { error: { code: "UNAVAILABLE", status: "UNAVAILABLE", message: "gateway stopping" } };
    const final = await followJob({
      initial: initialJobStream("j3"),
      open: async () => body([]),
      resume: async (_job, last) => {
        seen.push(last);
        if (seen.length === 1) return body([sse("snapshot", { text: "ab" }, "2"), sse("error", unavailable)]);
        if (seen.length === 2) throw new ApiError(400, "INVALID_EVENT_ID", "INVALID_ARGUMENT", "unknown id");
        return body([sse("snapshot", { text: "abc" }, "3"), sse("job", { id: "j3", status: "SUCCEEDED", result: { text: "abc" } })]);
      },
      onUpdate: () => {},
      retryDelay: noWait,
    });
    expect(seen).toEqual(["", "2", ""]);
    expect(final.text).toBe("abc");
  });

  it("gives up after the retries run out", async () => {
    let tries = 0;
    await expect(
      followJob({
        initial: initialJobStream("j4"),
        open: async () => body([]),
        resume: async () => {
          tries++;
          throw new TypeError("failed to fetch");
        },
        onUpdate: () => {},
        maxRetries: 2,
        retryDelay: noWait,
      }),
    ).rejects.toThrow("failed to fetch");
    expect(tries).toBe(3);
  });

  it("stops reading when aborted and resolves with the state so far", async () => {
    const stop = new AbortController();
    const final = await followJob({
      open: async (signal) =>
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode(sse("sent", { job_id: "j5" }) + sse("snapshot", { text: "so far" }, "6")));
            signal.addEventListener("abort", () => controller.error(new DOMException("aborted", "AbortError")));
          },
        }),
      resume: async () => body([]),
      onUpdate: (s) => s.text && stop.abort(),
      signal: stop.signal,
    });
    expect(final).toMatchObject({ jobId: "j5", text: "so far", done: false });
  });
});
