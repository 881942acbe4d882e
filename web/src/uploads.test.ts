import { describe, expect, it } from "vitest";
import { ApiError, KlikClient, memoryTokens } from "./api/client";
import { describeError } from "./api/errors";
import { uploadFile, uploadTarget } from "./uploads";

const json = (status: number, body: unknown) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

const PNG = new Blob([new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3])], { type: "image/png" });

interface Seen {
  method: string;
  path: string;
  auth: string;
  type: string;
  body: string;
}

/** A fake klik: the three steps of an upload, the PUT answered by `put`. */
function fakeKlik(put: () => Response = () => json(200, { upload_id: "u1" })) {
  const seen: Seen[] = [];
  const fetcher = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const url = new URL(request.url);
    const body = request.method === "PUT" ? String((await request.arrayBuffer()).byteLength) : await request.text();
    seen.push({
      method: request.method,
      path: url.pathname + url.search,
      auth: request.headers.get("Authorization") ?? "",
      type: request.headers.get("Content-Type") ?? "",
      body,
    });
    if (request.method === "POST" && url.pathname === "/v1/uploads") {
      return json(200, { upload_id: "u1", upload_url: "/v1/uploads/u1/content?sig=s", expires_at: "2026-01-01T00:00:00Z" });
    }
    if (request.method === "PUT") return put();
    if (url.pathname === "/v1/uploads/u1:complete") {
      return json(200, { id: "a1", kind: "UPLOAD", mime_type: "image/png", url: "/v1/files/a1" });
    }
    return json(404, { error: { code: "NOT_FOUND", status: "NOT_FOUND", message: "no" } });
  };
  const api = new KlikClient("http://klik.test", memoryTokens({ access: "tok", refresh: "r" }), fetcher);
  return { api, fetcher, seen };
}

describe("uploadFile", () => {
  it("asks for an upload, PUTs the bytes without the token, completes it and returns the asset", async () => {
    const { api, fetcher, seen } = fakeKlik();
    const asset = await uploadFile(api, PNG, "key-1", fetcher);
    expect(asset).toMatchObject({ id: "a1", kind: "UPLOAD" });
    expect(seen.map((s) => `${s.method} ${s.path}`)).toEqual([
      "POST /v1/uploads",
      "PUT /v1/uploads/u1/content?sig=s",
      "POST /v1/uploads/u1:complete",
    ]);
    expect(JSON.parse(seen[0]!.body)).toEqual({ content_type: "image/png", size: "7", idempotency_key: "key-1" });
    expect(seen[0]!.auth).toBe("Bearer tok");
    expect(seen[1]).toMatchObject({ auth: "", type: "image/png", body: "7" });
    expect(seen[2]!.auth).toBe("Bearer tok");
  });

  it("stops at a refused PUT with the API's reason, in words, and does not complete", async () => {
    const { api, fetcher, seen } = fakeKlik(() =>
      json(400, { error: { code: "UPLOAD_TYPE_MISMATCH", status: "INVALID_ARGUMENT", message: "the body is not image/png" } }),
    );
    const error = await uploadFile(api, PNG, "key-2", fetcher).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe("UPLOAD_TYPE_MISMATCH");
    expect(describeError(error)).toMatch(/not the image type/);
    expect(seen.map((s) => s.method)).toEqual(["POST", "PUT"]);
  });

  it("says a too-large refusal in words", async () => {
    const { api, fetcher } = fakeKlik(() =>
      json(413, { error: { code: "UPLOAD_TOO_LARGE", status: "INVALID_ARGUMENT", message: "too large" } }),
    );
    const error = await uploadFile(api, PNG, "key-3", fetcher).catch((e: unknown) => e);
    expect(describeError(error)).toMatch(/^That file is too large/);
  });
});

describe("uploadTarget", () => {
  it("puts a path under the client's base and keeps an absolute URL", () => {
    expect(uploadTarget("/v1/uploads/u/content?sig=1", "http://k.test/")).toBe("http://k.test/v1/uploads/u/content?sig=1");
    expect(uploadTarget("https://cdn.test/u", "http://k.test")).toBe("https://cdn.test/u");
    expect(uploadTarget("/v1/x", "")).toBe("/v1/x");
  });
});
