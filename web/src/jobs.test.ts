import { describe, expect, it } from "vitest";
import { isFinished, priceFor, upsertJob } from "./jobs";
import { match, SECTIONS } from "./routes";
import routes from "../public/routes.json";

describe("jobs", () => {
  it("puts new jobs first and never moves a job back", () => {
    let jobs = upsertJob([], { id: "a", status: "QUEUED" });
    jobs = upsertJob(jobs, { id: "b", status: "QUEUED" });
    expect(jobs.map((j) => j.id)).toEqual(["b", "a"]);
    jobs = upsertJob(jobs, { id: "a", status: "SUCCEEDED", result: { asset_url: "u" } });
    jobs = upsertJob(jobs, { id: "a", status: "RUNNING" }); // a late event
    expect(jobs[1]).toMatchObject({ status: "SUCCEEDED", result: { asset_url: "u" } });
    expect(isFinished(jobs[1]!)).toBe(true);
  });

  it("says the price of a kind", () => {
    const prices = [
      { kind: "IMAGE", model: "", unit: "image", credits_per_unit: "5", minimum_credits: "5" },
      { kind: "TEXT", model: "", unit: "1k tokens", credits_per_unit: "1", minimum_credits: "2" },
    ];
    expect(priceFor(prices, "IMAGE")).toBe("5 credits per image");
    expect(priceFor(prices, "TEXT", "unknown")).toBe("1 credit per 1k tokens, at least 2");
    expect(priceFor(prices, "CHAT")).toBe("");
  });
});

describe("client routes", () => {
  it("are the sections the gateway serves index.html for", () => {
    expect(SECTIONS.map((s) => s.path).sort()).toEqual([...routes].sort());
  });

  it("match paths to sections", () => {
    expect(match("/chats/42")).toMatchObject({ section: { path: "chats" }, rest: ["42"] });
    expect(match("/").section).toBeNull();
    expect(match("/nope").section).toBeNull();
  });

  it("serve the pages auth's mails link to, signed in or not", () => {
    // services/auth/verification.py VERIFY_PATH and recovery.py RESET_PATH.
    for (const path of ["/verify-email", "/reset-password", "/password-reset"]) {
      expect(match(path).section).toMatchObject({ signedIn: null });
    }
  });
});
