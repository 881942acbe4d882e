import { describe, expect, it } from "vitest";
import { initialJobStream } from "../api/jobStream";
import { awaitingReply, hasReply, replyProgress } from "./Chats";

describe("chat replies", () => {
  const chat = {
    messages: [
      { id: "m1", role: "user", content: "hi", job_id: "j1" },
      { id: "m2", role: "assistant", content: "hello", job_id: "j1" },
      { id: "m3", role: "user", content: "more", job_id: "j2" },
    ],
  };

  it("knows which replies the chat holds and whether one is awaited", () => {
    expect(hasReply(chat, "j1")).toBe(true);
    expect(hasReply(chat, "j2")).toBe(false);
    expect(hasReply(chat, "")).toBe(false);
    expect(awaitingReply(chat)).toBe(true);
    expect(awaitingReply({ messages: chat.messages.slice(0, 2) })).toBe(false);
  });

  it("says the running cost, and what a stopped reply was charged", () => {
    const running = { ...initialJobStream("j2"), tokens: "12", cost: "1" };
    expect(replyProgress(running)).toBe("12 tokens · 1 credit so far");
    expect(replyProgress({ ...running, done: true, cost: "2", job: { status: "SUCCEEDED" } })).toBe("12 tokens · 2 credits");
    expect(replyProgress({ ...running, done: true, job: { status: "CANCELLED" } })).toBe("Stopped · 12 tokens · 1 credit charged");
  });
});
