import { describe, expect, it } from "vitest";
import { dayRange, fillDays, labelWords, niceMax, shortDate, stackBars, ticks, toNumber, toSeries, totals } from "./charts";

const days = [
  { date: "2026-12-01", by_kind: [{ kind: "IMAGE", credits: "5" }] },
  { date: "2026-12-02", by_kind: [{ kind: "TEXT", credits: "3" }, { kind: "IMAGE", credits: "10" }] },
];
const series = toSeries(
  days,
  (d) => d.date,
  (d) => d.by_kind.map((k) => ({ label: k.kind, value: k.credits })),
);

describe("toSeries", () => {
  it("puts every label on every day, int64 strings as numbers", () => {
    expect(series.labels).toEqual(["IMAGE", "TEXT"]);
    expect(series.days).toEqual([
      { date: "2026-12-01", values: { IMAGE: 5, TEXT: 0 } },
      { date: "2026-12-02", values: { IMAGE: 10, TEXT: 3 } },
    ]);
    expect(totals(series)).toEqual([5, 13]);
  });
  it("reads bad numbers as zero", () => {
    expect([toNumber("x"), toNumber(undefined), toNumber(Number.NaN), toNumber("12")]).toEqual([0, 0, 0, 12]);
  });
});

describe("fillDays", () => {
  it("spans the days ending on the last one, across a month end", () => {
    expect(dayRange("2026-03-01", 3)).toEqual(["2026-02-27", "2026-02-28", "2026-03-01"]);
    expect(dayRange("bad", 3)).toEqual([]);
  });
  it("fills missing days with zeros and drops days outside the range", () => {
    const filled = fillDays(series, "2026-12-03", 3);
    expect(filled.days.map((d) => d.date)).toEqual(["2026-12-01", "2026-12-02", "2026-12-03"]);
    expect(filled.days[2]!.values).toEqual({ IMAGE: 0, TEXT: 0 });
    expect(fillDays(series, "2026-12-02", 1).days).toEqual([{ date: "2026-12-02", values: { IMAGE: 10, TEXT: 3 } }]);
  });
});

describe("scale", () => {
  it("rounds the top up to 1, 2 or 5 × 10ⁿ", () => {
    expect([0, -3, 0.3, 1, 3, 13, 20, 51, 999, 1001].map(niceMax)).toEqual([1, 1, 0.5, 1, 5, 20, 20, 100, 1000, 2000]);
    expect(ticks(13)).toEqual([0, 5, 10, 15, 20]);
    // Whole steps for small counts: never "0.25 jobs".
    expect(ticks(0)).toEqual([0, 1]);
    expect(ticks(2)).toEqual([0, 1, 2]);
    expect(ticks(3)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(ticks(7)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(ticks(40)).toEqual([0, 10, 20, 30, 40, 50]);
    expect(ticks(80)).toEqual([0, 25, 50, 75, 100]);
  });
});

describe("stackBars", () => {
  it("stacks each day's labels from the bottom, scaled to the nice top", () => {
    const layout = stackBars(series, 200, 100);
    expect(layout.top).toBe(20);
    const [first, second, third] = layout.bars;
    expect(layout.bars).toHaveLength(3); // zeros draw nothing
    expect(first).toMatchObject({ date: "2026-12-01", label: "IMAGE", value: 5, height: 25, y: 75 });
    expect(second).toMatchObject({ label: "IMAGE", height: 50, y: 50 });
    expect(third).toMatchObject({ label: "TEXT", height: 15, y: 35 });
    expect(second!.x).toBeGreaterThan(first!.x + first!.width); // a gap between columns
    expect(first!.width).toBeCloseTo(96);
  });
  it("draws nothing for an empty or all-zero series", () => {
    expect(stackBars({ labels: [], days: [] }, 100, 100).bars).toEqual([]);
    expect(stackBars(fillDays(series, "2027-01-10", 2), 100, 100)).toMatchObject({ top: 1, bars: [] });
  });
});

describe("words", () => {
  it("names days and labels", () => {
    expect(shortDate("2026-12-02")).toBe("2 Dec");
    expect(labelWords("AVATAR_VIDEO")).toBe("Avatar video");
    expect(labelWords("eur")).toBe("EUR");
  });
});
