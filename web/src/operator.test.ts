import { describe, expect, it } from "vitest";
import {
  formatRate,
  isOperator,
  jobsSeries,
  operatorHome,
  operatorPages,
  pagesFor,
  revenueSeries,
  spentSeries,
  USER_QUERY_MAX,
  userQuery,
  usersPageQuery,
  usersSummary,
} from "./operator";

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
  it("sends the trimmed text, within the API's limit", () => {
    expect(userQuery("  ada  ")).toBe("ada");
    expect(userQuery("   ")).toBe("");
    expect(userQuery("x".repeat(USER_QUERY_MAX + 5))).toHaveLength(USER_QUERY_MAX);
  });
  it("asks the server for one page of the query", () => {
    expect(usersPageQuery("", "")).toEqual({ page_size: 100 });
    expect(usersPageQuery("ada", "")).toEqual({ page_size: 100, query: "ada" });
    expect(usersPageQuery("ada", "tok")).toEqual({ page_size: 100, page_token: "tok", query: "ada" });
  });
  it("starts from the first page when the query changes", () => {
    const loaded = { query: "ada", tokens: ["", "t1", "t2"] };
    expect(pagesFor(loaded, "ada")).toEqual(["", "t1", "t2"]);
    expect(pagesFor(loaded, "bob")).toEqual([""]);
    expect(pagesFor(loaded, "")).toEqual([""]);
  });
  it("says how many accounts are shown", () => {
    expect(usersSummary(0, "", false)).toBe("0 accounts");
    expect(usersSummary(100, "", true)).toBe("100 accounts, more to load");
    expect(usersSummary(1, "ada", false)).toBe("1 account matches “ada”");
    expect(usersSummary(3, "ada", false)).toBe("3 accounts match “ada”");
  });
  it("formats an error rate", () => {
    expect([formatRate(0), formatRate(1 / 3), formatRate(1), formatRate(undefined)]).toEqual(["0 %", "33.3 %", "100 %", "0 %"]);
  });
});
