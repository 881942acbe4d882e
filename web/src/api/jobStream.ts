// Following one generation job's text as it is written: `POST
// /v1/chats/{id}/messages:stream` (send a chat message and stream its reply) and
// `GET /v1/generations/{job_id}:watch` (any job) send the same events — `sent`
// (chat only, first), `snapshot`, `delta`, `job` (the last one final) — with each
// snapshot and delta's `id:` the number of characters sent so far. `followJob`
// reads such a stream and, when the connection drops before the final `job`,
// resumes it with `:watch` and `Last-Event-ID`, so the text has no gap and no repeat.
import type { ChatMessage, Job, KlikClient, Schemas } from "./client";
import { ApiError, toApiError } from "./errors";
import { readEventStream, SseParser, type SseMessage } from "./sse";

type JobDelta = Schemas["klik.generation.v1.JobDelta"];
type JobText = Schemas["klik.generation.v1.JobText"];
type Sent = Schemas["klik.content.v1.SendMessageResponse"];

export interface JobStreamState {
  /** The job writing the text ("" until the chat stream's `sent`). */
  jobId: string;
  /** The stored chat message (chat streams only). */
  sent: ChatMessage | null;
  /** The text so far. */
  text: string;
  /** Completion tokens so far, and what they cost (credits), as the stream reports them. */
  tokens: string;
  cost: string;
  /** The job as last reported (its status), null before the first `job` event. */
  job: Job | null;
  /** The last event id received: where a resumed stream starts. */
  lastEventId: string;
  /** The final `job` event has arrived. */
  done: boolean;
}

export function initialJobStream(jobId = ""): JobStreamState {
  return { jobId, sent: null, text: "", tokens: "0", cost: "0", job: null, lastEventId: "", done: false };
}

export const FINAL_STATUSES = ["SUCCEEDED", "FAILED", "CANCELLED"];

/** Length in Unicode code points: the unit of the stream's offsets and ids. */
export function codePoints(text: string): number {
  return Array.from(text).length;
}

function firstCodePoints(text: string, count: number): string {
  return Array.from(text).slice(0, count).join("");
}

// gRPC status → HTTP status, for errors that arrive inside a stream (no HTTP status of their own).
const HTTP_OF: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  FAILED_PRECONDITION: 400,
  UNAUTHENTICATED: 401,
  PERMISSION_DENIED: 403,
  NOT_FOUND: 404,
  ABORTED: 409,
  RESOURCE_EXHAUSTED: 429,
  UNAVAILABLE: 503,
  DEADLINE_EXCEEDED: 504,
};

/** The ApiError in an `event: error` (its data is the API's error body). */
export function streamError(data: string): ApiError {
  let body: unknown = null;
  try {
    body = JSON.parse(data);
  } catch {
    // not JSON: an error all the same
  }
  const status =
    typeof body === "object" && body !== null && "error" in body
      ? (body as { error: { status?: unknown } }).error.status
      : "";
  return toApiError((typeof status === "string" && HTTP_OF[status]) || 500, body);
}

/** The state after one stream message. An `error` message throws its ApiError. */
export function applyJobEvent(state: JobStreamState, message: SseMessage): JobStreamState {
  if (message.event === "error") throw streamError(message.data);
  let data: unknown;
  try {
    data = JSON.parse(message.data);
  } catch {
    return state; // not ours to read; the next events still are
  }
  const next = { ...state, lastEventId: message.hasId ? message.lastEventId : state.lastEventId };
  switch (message.event) {
    case "sent": {
      const sent = data as Sent;
      return { ...next, jobId: sent.job_id ?? next.jobId, sent: sent.message ?? null };
    }
    case "snapshot":
      return { ...next, text: (data as JobText).text ?? "" };
    case "delta": {
      const delta = data as JobDelta;
      const offset = Number(delta.offset ?? 0);
      const have = codePoints(next.text);
      // Deltas join with no gap and no repeat; should one overlap, it wins from its offset.
      const text =
        offset >= have ? next.text + (delta.text ?? "") : firstCodePoints(next.text, offset) + (delta.text ?? "");
      return { ...next, text, tokens: delta.tokens ?? next.tokens, cost: delta.cost_credits ?? next.cost };
    }
    case "job": {
      const job = data as Job;
      const done = FINAL_STATUSES.includes(job.status ?? "");
      const cost = job.cost_credits && job.cost_credits !== "0" ? job.cost_credits : next.cost;
      const text = done && job.result?.text ? job.result.text : next.text;
      return { ...next, jobId: job.id ?? next.jobId, job, cost, text, done };
    }
    default:
      return state;
  }
}

export interface FollowOptions {
  /** Opens the first stream (e.g. the chat POST; it may be re-sent with the same
   *  idempotency key when it drops before naming its job). */
  open: (signal: AbortSignal) => Promise<ReadableStream<Uint8Array>>;
  /** Opens `:watch` for `jobId` after `lastEventId` ("" for from the start). */
  resume: (jobId: string, lastEventId: string, signal: AbortSignal) => Promise<ReadableStream<Uint8Array>>;
  onUpdate: (state: JobStreamState) => void;
  signal?: AbortSignal;
  /** Attempts in a row that made no progress before giving up. */
  maxRetries?: number;
  /** How long to wait before the nth retry (1, 2, …). */
  retryDelay?: (attempt: number) => number;
  /** Reports that the connection dropped and is being resumed. */
  onReconnect?: (attempt: number, error: unknown) => void;
  initial?: JobStreamState;
}

// Stream errors worth resuming after: the connection, not the request, failed.
const RESUMABLE = new Set(["UNAVAILABLE", "DEADLINE_EXCEEDED", "TOKEN_EXPIRED", "INTERNAL", "UNKNOWN"]);

function resumable(error: unknown): boolean {
  if (error instanceof ApiError) {
    return RESUMABLE.has(error.code) || RESUMABLE.has(error.status) || error.httpStatus >= 500;
  }
  return true; // a network failure, a cut body
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((done) => {
    if (signal.aborted) return done();
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), done()), { once: true });
  });
}

/** Follow a job's stream to its final `job` event, resuming after drops. Resolves
 *  with the final state; rejects with the ApiError of a request that was refused
 *  (e.g. 402 before the first event), or when the retries run out. Aborting
 *  `signal` stops reading (the job goes on) and resolves with the state so far. */
export async function followJob(options: FollowOptions): Promise<JobStreamState> {
  const maxRetries = options.maxRetries ?? 6;
  const retryDelay = options.retryDelay ?? ((n) => Math.min(500 * 2 ** (n - 1), 5000));
  const abort = new AbortController();
  const outer = options.signal;
  if (outer?.aborted) abort.abort();
  outer?.addEventListener("abort", () => abort.abort(), { once: true });
  let state = options.initial ?? initialJobStream();
  let failures = 0;
  for (;;) {
    const before = state;
    try {
      const body = state.jobId
        ? await options.resume(state.jobId, state.lastEventId, abort.signal)
        : await options.open(abort.signal);
      // Every resumed stream starts afresh; the event ids are the job's, not the connection's.
      await readEventStream(body, (message) => {
        state = applyJobEvent(state, message);
        options.onUpdate(state);
      }, new SseParser());
      if (state.done) return state;
      throw new Error("the stream ended before the job did");
    } catch (error) {
      if (abort.signal.aborted || state.done) return state;
      if (error instanceof ApiError && error.code === "INVALID_EVENT_ID" && state.lastEventId) {
        state = { ...state, lastEventId: "" }; // start over from the text so far (a snapshot)
        continue;
      }
      // A refusal (402 before the first event, 429 too many streams, …) is the caller's to show.
      if (!resumable(error)) throw error;
      failures = state === before ? failures + 1 : 1;
      if (failures > maxRetries) throw error;
      options.onReconnect?.(failures, error);
      await pause(retryDelay(failures), abort.signal);
      if (abort.signal.aborted) return state;
    }
  }
}

function streamBody(data: ReadableStream<Uint8Array> | null | undefined): ReadableStream<Uint8Array> {
  if (!data) throw new TypeError("the stream had no body");
  return data;
}

/** Open `GET /v1/generations/{job_id}:watch` after `lastEventId` (a plain API error if refused). */
export function openWatch(api: KlikClient, jobId: string, lastEventId: string, signal: AbortSignal) {
  return api
    .call((c) =>
      c.GET("/v1/generations/{job_id}:watch", {
        params: { path: { job_id: jobId }, header: lastEventId ? { "Last-Event-ID": lastEventId } : undefined },
        parseAs: "stream",
        signal,
      }),
    )
    .then(streamBody);
}

type Follow = Pick<FollowOptions, "onUpdate" | "signal" | "onReconnect">;

/** Send `content` to a chat and follow the reply as it is written. */
export function streamChatReply(
  api: KlikClient,
  chatId: string,
  content: string,
  idempotencyKey: string,
  follow: Follow,
): Promise<JobStreamState> {
  return followJob({
    ...follow,
    open: (signal) =>
      api
        .call((c) =>
          c.POST("/v1/chats/{chat_id}/messages:stream", {
            params: { path: { chat_id: chatId } },
            body: { content, idempotency_key: idempotencyKey },
            parseAs: "stream",
            signal,
          }),
        )
        .then(streamBody),
    resume: (jobId, last, signal) => openWatch(api, jobId, last, signal),
  });
}

/** Follow a job that already exists (a TEXT generation, a chat reply after a reload). */
export function watchJob(api: KlikClient, jobId: string, follow: Follow): Promise<JobStreamState> {
  return followJob({
    ...follow,
    initial: initialJobStream(jobId),
    open: (signal) => openWatch(api, jobId, "", signal),
    resume: (id, last, signal) => openWatch(api, id, last, signal),
  });
}
