import { describe, expect, it } from "vitest";
import { tokenFromQuery } from "./Account";

describe("mailed links", () => {
  it("carry their token in the query", () => {
    expect(tokenFromQuery("?token=abc-123_x")).toBe("abc-123_x");
    expect(tokenFromQuery("")).toBe("");
  });
});
