// Uploading a file as an asset (POST /v1/uploads → PUT the bytes to the signed
// upload_url → POST /v1/uploads/{id}:complete). The PUT carries no bearer token: the
// URL's signature is the capability. Each step's refusal is an ApiError with the
// API's reason (UPLOAD_TOO_LARGE, UNSUPPORTED_UPLOAD_TYPE, UPLOAD_TYPE_MISMATCH, …).
import type { Asset, KlikClient } from "./api/client";
import { toApiError } from "./api/errors";

/** The types CreateUpload takes (its content_type field). */
export const UPLOAD_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"] as const;

export interface UploadFile {
  type: string;
  size: number;
}

/** Where to PUT: the upload_url as given, made absolute against the client's base when it is a path. */
export function uploadTarget(uploadUrl: string, baseUrl: string): string {
  return uploadUrl.startsWith("/") ? `${baseUrl.replace(/\/$/, "")}${uploadUrl}` : uploadUrl;
}

async function bodyOf(response: Response): Promise<unknown> {
  const text = await response.text().catch(() => "");
  try {
    return text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    return text;
  }
}

/** Upload `file` and return the asset it became (kind UPLOAD). */
export async function uploadFile(
  api: KlikClient,
  file: UploadFile & Blob,
  idempotencyKey: string,
  fetchImpl: typeof fetch = (...args) => fetch(...args),
): Promise<Asset> {
  const granted = await api.call((c) =>
    c.POST("/v1/uploads", {
      body: { content_type: file.type, size: String(file.size), idempotency_key: idempotencyKey },
    }),
  );
  if (!granted.upload_url || !granted.upload_id) throw new Error("klik did not give an upload address");
  const put = await fetchImpl(uploadTarget(granted.upload_url, api.baseUrl), {
    method: "PUT",
    headers: { "Content-Type": file.type },
    body: file,
  });
  if (!put.ok) throw toApiError(put.status, await bodyOf(put));
  const uploadId = granted.upload_id;
  const asset = await api.call((c) =>
    c.POST("/v1/uploads/{upload_id}:complete", { params: { path: { upload_id: uploadId } }, body: {} }),
  );
  if (!asset.id) throw new Error("klik did not return the uploaded asset");
  return asset;
}
