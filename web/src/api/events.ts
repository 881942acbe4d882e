// The caller's live events (`GET /v1/events`, Server-Sent Events): decoding the
// envelopes, and a subscription that survives reconnects and token refreshes.
import type { Job } from "./client";
import { SseParser } from "./sse";

export interface Envelope<P = Record<string, unknown>> {
  id: string;
  type: string;
  occurred_at?: string;
  aggregate_id?: string;
  user_id?: string;
  request_id?: string;
  payload: P & { "@type"?: string };
}

export interface WalletChanged {
  user_id: string;
  balance: string;
  held: string;
  available: string;
}

export type KlikEvent =
  | { kind: "wallet"; sequence: string; wallet: WalletChanged; envelope: Envelope }
  | { kind: "job"; sequence: string; transition: string; job: Job; envelope: Envelope }
  | { kind: "other"; sequence: string; type: string; envelope: Envelope };

/** A JSON string or number as a string (int64s arrive as either); else `fallback`. */
function scalar(value: unknown, fallback: string): string {
  return typeof value === "string" || typeof value === "number" ? String(value) : fallback;
}

/** One SSE message (its `event:`, `data:` and `id:`) as a KlikEvent; null if it is not one. */
export function decodeEvent(type: string, data: string, sequence = ""): KlikEvent | null {
  let envelope: Envelope;
  try {
    envelope = JSON.parse(data) as Envelope;
  } catch {
    return null;
  }
  if (typeof envelope !== "object" || envelope === null || typeof envelope.payload !== "object") {
    return null;
  }
  const eventType = type || envelope.type;
  if (eventType === "wallet.changed") {
    const p = envelope.payload as Record<string, unknown>;
    const wallet: WalletChanged = {
      user_id: scalar(p.user_id, envelope.user_id ?? ""),
      balance: scalar(p.balance, "0"),
      held: scalar(p.held, "0"),
      available: scalar(p.available, "0"),
    };
    return { kind: "wallet", sequence, wallet, envelope };
  }
  if (eventType.startsWith("generation.job.")) {
    const job = (envelope.payload as { job?: Job }).job;
    if (!job) return null;
    return { kind: "job", sequence, transition: eventType.slice(15), job, envelope };
  }
  return { kind: "other", sequence, type: eventType, envelope };
}

/** Parse a text/event-stream body (whole messages) into its messages, for clients
 *  that read the stream themselves instead of using EventSource. Comment lines
 *  (heartbeats) are skipped; a message without data is dropped. (Streams read as
 *  they arrive: SseParser in ./sse.) */
export function parseEventStream(text: string): { id: string; event: string; data: string }[] {
  return new SseParser()
    .push(`${text}\n\n`)
    .map((m) => ({ id: m.lastEventId, event: m.event, data: m.data }));
}

export const STREAMED_TYPES = [
  "wallet.changed",
  "generation.job.queued",
  "generation.job.running",
  "generation.job.succeeded",
  "generation.job.failed",
  "generation.job.cancelled",
  "wallet.low_balance",
  "wallet.plan_changed",
  "content.notification.created",
] as const;

export interface Subscription {
  close(): void;
}

/** Listen to the caller's events with EventSource (the token rides in the query:
 *  EventSource cannot send headers). On an error the stream is reopened with a
 *  fresh token after `retryMs`; `onState` tells whether it is live. */
export function subscribe(
  baseUrl: string,
  token: () => Promise<string | null>,
  onEvent: (event: KlikEvent) => void,
  onState: (live: boolean) => void = () => {},
  retryMs = 2000,
): Subscription {
  let source: EventSource | null = null;
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const open = async () => {
    const access = await token();
    if (closed || !access) return;
    const url = `${baseUrl}/v1/events?access_token=${encodeURIComponent(access)}`;
    source = new EventSource(url);
    source.onopen = () => onState(true);
    const handler = (message: MessageEvent<string>) => {
      const event = decodeEvent(message.type, message.data, message.lastEventId);
      if (event) onEvent(event);
    };
    for (const type of STREAMED_TYPES) source.addEventListener(type, handler);
    source.onerror = () => {
      onState(false);
      source?.close();
      if (!closed) timer = setTimeout(() => void open(), retryMs);
    };
  };
  void open();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      source?.close();
    },
  };
}
