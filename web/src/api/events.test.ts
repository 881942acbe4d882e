import { describe, expect, it } from "vitest";
import { applyWalletEvent, noticeOf } from "../session";
import { decodeEvent, parseEventStream } from "./events";

const envelope = (type: string, payload: object) =>
  JSON.stringify({ id: "e1", type, user_id: "u1", occurred_at: "2026-12-01T00:00:00Z", payload });

describe("SSE events", () => {
  it("parses a text/event-stream, skipping heartbeats", () => {
    const text = `: heartbeat\n\nid: 7\nevent: wallet.changed\ndata: {"a":1}\n\n: hb\nid: 8\nevent: x\ndata: one\ndata: two\n\n`;
    expect(parseEventStream(text)).toEqual([
      { id: "7", event: "wallet.changed", data: '{"a":1}' },
      { id: "8", event: "x", data: "one\ntwo" },
    ]);
  });

  it("decodes wallet.changed into the new balance", () => {
    const data = envelope("wallet.changed", {
      "@type": "type.googleapis.com/klik.events.v1.WalletChanged",
      user_id: "u1",
      balance: "95",
      held: "0",
      available: "95",
    });
    const event = decodeEvent("wallet.changed", data, "12");
    expect(event?.kind).toBe("wallet");
    const wallet = applyWalletEvent({ user_id: "u1", balance: "100", held: "5", available: "95" }, event!);
    expect(wallet).toMatchObject({ balance: "95", held: "0", available: "95" });
  });

  it("decodes job transitions with their job", () => {
    const data = envelope("generation.job.succeeded", { job: { id: "j1", status: "SUCCEEDED", kind: "IMAGE" } });
    const event = decodeEvent("generation.job.succeeded", data, "13");
    expect(event).toMatchObject({ kind: "job", transition: "succeeded", sequence: "13", job: { id: "j1" } });
  });

  it("refuses what is not an envelope and keeps other types as they are", () => {
    expect(decodeEvent("wallet.changed", "not json")).toBeNull();
    expect(decodeEvent("generation.job.queued", envelope("generation.job.queued", {}))).toBeNull();
    expect(decodeEvent("content.notification.created", envelope("content.notification.created", {}))).toMatchObject({
      kind: "other",
      type: "content.notification.created",
    });
  });

  it("ignores events that are not wallet changes for the wallet", () => {
    const wallet = { balance: "1" };
    const event = decodeEvent("x.y", envelope("x.y", {}))!;
    expect(applyWalletEvent(wallet, event)).toBe(wallet);
  });
});

describe("live notifications", () => {
  it("takes the words of a notification event, and nothing from others", () => {
    const created = decodeEvent(
      "content.notification.created",
      envelope("content.notification.created", { kind: "comment", text: "Ann commented on your post" }),
    )!;
    expect(noticeOf(created)).toBe("Ann commented on your post");
    const blank = decodeEvent("content.notification.created", envelope("content.notification.created", {}))!;
    expect(noticeOf(blank)).toBe("You have a new notification.");
    expect(noticeOf(decodeEvent("x.y", envelope("x.y", { text: "no" }))!)).toBeNull();
  });
});
