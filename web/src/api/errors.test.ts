import { describe, expect, it } from "vitest";
import { ApiError, describeError, toApiError } from "./errors";

const body = (code: string, status: string, message: string) => ({
  error: { code, status, message, details: {}, request_id: "r1" },
});

describe("API errors in words", () => {
  it("keeps the gateway's code, status, message and request id", () => {
    const error = toApiError(402, body("INSUFFICIENT_CREDITS", "FAILED_PRECONDITION", "need 5, have 2"));
    expect(error).toBeInstanceOf(ApiError);
    expect([error.httpStatus, error.code, error.status, error.message, error.requestId]).toEqual([
      402,
      "INSUFFICIENT_CREDITS",
      "FAILED_PRECONDITION",
      "need 5, have 2",
      "r1",
    ]);
  });

  it("says what to do, then the server's own words as a sentence", () => {
    const error = toApiError(402, body("INSUFFICIENT_CREDITS", "FAILED_PRECONDITION", "need 5, have 2"));
    expect(describeError(error)).toBe("You don't have enough credits for this. Need 5, have 2.");
  });

  it("falls back to the status name's advice when the code has none", () => {
    const error = toApiError(403, body("NOT_AUTHOR", "PERMISSION_DENIED", "only the author may publish"));
    expect(describeError(error)).toBe("You're not allowed to do that. Only the author may publish.");
  });

  it("uses the message alone for reasons without advice", () => {
    const error = toApiError(400, body("INVALID_ARGUMENT", "INVALID_ARGUMENT", "title is blank"));
    expect(describeError(error)).toBe("Title is blank.");
  });

  it("speaks of the HTTP status when the body is not klik's error shape", () => {
    expect(describeError(toApiError(504, "<html>gateway timeout</html>"))).toBe(
      "klik took too long to answer. Try again.",
    );
    expect(describeError(toApiError(418, undefined))).toBe("klik answered 418.");
  });

  it("says a network failure is one", () => {
    expect(describeError(new TypeError("Failed to fetch"))).toBe(
      "Could not reach klik. Check your connection and try again.",
    );
    expect(describeError("?")).toBe("Something went wrong.");
  });
});

describe("the account reasons in words", () => {
  it("says what to do about an unverified address", () => {
    const error = toApiError(403, body("EMAIL_NOT_VERIFIED", "PERMISSION_DENIED", ""));
    expect(describeError(error)).toBe("Verify your email address first: follow the link we mailed you.");
  });

  it("says a spent reset link needs a new one", () => {
    const error = toApiError(400, body("INVALID_RESET_TOKEN", "INVALID_ARGUMENT", ""));
    expect(describeError(error)).toContain("Ask for a new one");
  });
});

describe("the plan reasons in words", () => {
  it("says a premium model needs a plan", () => {
    const error = toApiError(403, body("PREMIUM_REQUIRED", "PERMISSION_DENIED", "model sandbox-pro is premium-only"));
    expect(describeError(error)).toBe(
      "That model is for premium subscribers: subscribe to a plan with premium models in your wallet. Model sandbox-pro is premium-only.",
    );
  });
});

describe("the profile picture reasons in words", () => {
  it("says only an image will do, and when content cannot be asked", () => {
    const notImage = toApiError(400, body("AVATAR_NOT_IMAGE", "INVALID_ARGUMENT", "asset is a TEXT asset"));
    expect(describeError(notImage)).toBe("Only an image can be your profile picture. Asset is a TEXT asset.");
    const unavailable = toApiError(503, body("CONTENT_UNAVAILABLE", "UNAVAILABLE", ""));
    expect(describeError(unavailable)).toContain("nothing changed");
  });
});
