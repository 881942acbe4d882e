import { describe, expect, it } from "vitest";
import type { User } from "./api/client";
import { formatRate, isOperator, jobsSeries, matchesUser, operatorHome, operatorPages, revenueSeries, spentSeries } from "./operator";

describe("operator pages", () => {
  it("are shown by role", () => {
    expect(operatorPages("admin").map((p) => p.title)).toEqual(["Dashboard", "Users", "Reports", "Providers"]);
    expect(operatorPages("moderator").map((p) => p.title)).toEqual(["Reports", "Providers"]);
    expect(operatorPages("user")).toEqual([]);
    expect([isOperator("admin"), isOperator("moderator"), isOperator("premium"), isOperator(undefined)]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect([operatorHome("admin"), operatorHome("moderator"), operatorHome("user")]).toEqual([
      "/operator",
      "/operator/reports",
      "/studio",
    ]);
  });
});

describe("dashboard series", () => {
  const days = [
    {
      date: "2026-12-01",
      spent_by_kind: [{ kind: "IMAGE", credits: "5" }],
      revenue: [
        { currency: "eur", amount: "500" },
        { currency: "usd", amount: "0" },
      ],
    },
    {
      date: "2026-12-02",
      spent_by_kind: [{ kind: "IMAGE", credits: "0" }],
      revenue: [
        { currency: "eur", amount: "0" },
        { currency: "usd", amount: "300" },
      ],
    },
  ];
  it("never adds up money in different currencies", () => {
    const revenue = revenueSeries(days);
    expect([...revenue.keys()]).toEqual(["eur", "usd"]);
    expect(revenue.get("eur")!.days.map((d) => d.values.eur)).toEqual([500, 0]);
    expect(revenue.get("usd")!.days.map((d) => d.values.usd)).toEqual([0, 300]);
    expect(revenueSeries([]).size).toBe(0);
  });
  it("reads credits spent and jobs by status", () => {
    expect(spentSeries(days).days.map((d) => d.values.IMAGE)).toEqual([5, 0]);
    const jobs = jobsSeries([{ date: "2026-12-02", by_status: [{ label: "SUCCEEDED", jobs: "2" }, { label: "FAILED", jobs: "1" }] }]);
    expect(jobs.labels).toEqual(["SUCCEEDED", "FAILED"]);
    expect(jobs.days[0]!.values).toEqual({ SUCCEEDED: 2, FAILED: 1 });
  });
});

describe("users search", () => {
  const ada = { id: "u-1", email: "ada@example.com", display_name: "Ada Lovelace", role: "moderator" } as User;
  it("matches every word anywhere, ignoring case", () => {
    expect(matchesUser(ada, "")).toBe(true);
    expect(matchesUser(ada, "ADA love")).toBe(true);
    expect(matchesUser(ada, "moderator example")).toBe(true);
    expect(matchesUser(ada, "ada admin")).toBe(false);
  });
  it("formats an error rate", () => {
    expect([formatRate(0), formatRate(1 / 3), formatRate(1), formatRate(undefined)]).toEqual(["0 %", "33.3 %", "100 %", "0 %"]);
  });
});
