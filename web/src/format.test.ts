import { describe, expect, it } from "vitest";
import { formatCredits, formatDelta, formatStatus, formatTime, toBigInt } from "./format";

describe("formatting", () => {
  it("formats credits exactly, int64 strings included", () => {
    expect(formatCredits("1250")).toBe("1,250 credits");
    expect(formatCredits("1")).toBe("1 credit");
    expect(formatCredits(0)).toBe("0 credits");
    expect(formatCredits("-5")).toBe("−5 credits");
    expect(formatCredits("9007199254740993")).toBe("9,007,199,254,740,993 credits");
    expect(formatCredits(undefined)).toBe("0 credits");
  });

  it("signs ledger amounts", () => {
    expect(formatDelta("100")).toBe("+100");
    expect(formatDelta("-5")).toBe("−5");
    expect(formatDelta("0")).toBe("0");
  });

  it("reads only integers", () => {
    expect(toBigInt("12abc")).toBe(0n);
    expect(toBigInt(3.9)).toBe(3n);
    expect(toBigInt(" 7 ")).toBe(7n);
  });

  it("formats times and statuses", () => {
    expect(formatTime("2026-12-01T17:05:00Z", "UTC")).toBe("1 Dec 2026, 17:05");
    expect(formatTime("not a date")).toBe("");
    expect(formatStatus("AVATAR_VIDEO")).toBe("Avatar video");
    expect(formatStatus("published")).toBe("Published");
  });
});
