import { describe, expect, it } from "vitest";
import { ApiError, KlikClient, memoryTokens, tokenExpiry } from "./client";

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

function jwt(exp: number): string {
  const part = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${part({ alg: "EdDSA" })}.${part({ exp })}.sig`;
}

describe("KlikClient", () => {
  it("sends the token, refreshes once on 401 and retries", async () => {
    const seen: string[] = [];
    const fetcher = async (input: RequestInfo | URL) => {
      const request = input as Request;
      seen.push(`${request.method} ${new URL(request.url).pathname} ${request.headers.get("Authorization") ?? ""}`);
      if (request.url.endsWith("/v1/auth/refresh")) return json(200, { access_token: "new", refresh_token: "r2" });
      if (request.headers.get("Authorization") === "Bearer old") return json(401, { error: { code: "UNAUTHENTICATED", status: "UNAUTHENTICATED", message: "token expired" } });
      return json(200, { user_id: "u1", balance: "10", held: "0", available: "10" });
    };
    const tokens = memoryTokens({ access: "old", refresh: "r1" });
    const client = new KlikClient("http://klik.test", tokens, fetcher);
    const wallet = await client.call((c) => c.GET("/v1/wallet"));
    expect(wallet.available).toBe("10");
    expect(tokens.get()).toEqual({ access: "new", refresh: "r2" });
    expect(seen).toEqual(["GET /v1/wallet Bearer old", "POST /v1/auth/refresh ", "GET /v1/wallet Bearer new"]);
  });

  it("throws the gateway's error as an ApiError", async () => {
    const fetcher = async () =>
      json(402, { error: { code: "INSUFFICIENT_CREDITS", status: "FAILED_PRECONDITION", message: "need 5", details: {}, request_id: "x" } });
    const client = new KlikClient("http://klik.test", memoryTokens({ access: "a", refresh: "" }), fetcher);
    const failure = await client.call((c) => c.POST("/v1/generations", { body: { kind: "IMAGE", prompt: "p" } })).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(ApiError);
    expect((failure as ApiError).code).toBe("INSUFFICIENT_CREDITS");
  });

  it("signs out locally when the session cannot be refreshed", async () => {
    const fetcher = async () => json(401, { error: { code: "UNAUTHENTICATED", status: "UNAUTHENTICATED", message: "no" } });
    const tokens = memoryTokens({ access: "a", refresh: "r" });
    const client = new KlikClient("http://klik.test", tokens, fetcher);
    let signedOut = false;
    client.onSignedOut = () => (signedOut = true);
    await expect(client.call((c) => c.GET("/v1/auth/me"))).rejects.toBeInstanceOf(ApiError);
    expect([tokens.get(), signedOut]).toEqual([null, true]);
  });

  it("reads a token's expiry and refreshes one about to expire", async () => {
    expect(tokenExpiry(jwt(1000))).toBe(1_000_000);
    expect(tokenExpiry("garbage")).toBeNull();
    const soon = jwt(Math.floor(Date.now() / 1000) + 5);
    const fetcher = async () => json(200, { access_token: "fresh", refresh_token: "r2" });
    const client = new KlikClient("http://klik.test", memoryTokens({ access: soon, refresh: "r" }), fetcher);
    expect(await client.accessToken()).toBe("fresh");
  });
});
