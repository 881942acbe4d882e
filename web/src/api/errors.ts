// Every failure of a call to klik, as an ApiError, and in words for people.
// The gateway's error body is `{"error": {code, status, message, details, request_id}}`.
import type { components } from "./schema";

export type ErrorBody = components["schemas"]["Error"];

export class ApiError extends Error {
  readonly code: string;
  readonly status: string;
  readonly httpStatus: number;
  readonly requestId: string;
  readonly details: Record<string, string | number>;

  constructor(
    httpStatus: number,
    code: string,
    status: string,
    message: string,
    requestId = "",
    details: Record<string, string | number> = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.httpStatus = httpStatus;
    this.code = code;
    this.status = status;
    this.requestId = requestId;
    this.details = details;
  }
}

function isErrorBody(body: unknown): body is ErrorBody {
  if (typeof body !== "object" || body === null || !("error" in body)) return false;
  const error = body.error;
  return typeof error === "object" && error !== null && "message" in error;
}

/** The ApiError for an HTTP answer `httpStatus` with `body` (parsed JSON, text or nothing). */
export function toApiError(httpStatus: number, body: unknown): ApiError {
  if (isErrorBody(body)) {
    const e = body.error;
    return new ApiError(
      httpStatus,
      e.code || e.status || "UNKNOWN",
      e.status || "UNKNOWN",
      e.message || "",
      e.request_id ?? "",
      e.details ?? {},
    );
  }
  return new ApiError(httpStatus, `HTTP_${httpStatus}`, "UNKNOWN", "");
}

// What a person can do about some reasons, said before the server's own words.
const ADVICE: Record<string, string> = {
  INSUFFICIENT_CREDITS: "You don't have enough credits for this.",
  INVALID_CREDENTIALS: "That email and password don't match an account.",
  EMAIL_TAKEN: "An account with that email already exists — sign in instead.",
  UNAUTHENTICATED: "Your session has ended. Please sign in again.",
  RATE_LIMITED: "Too many requests — wait a moment and try again.",
  RESOURCE_EXHAUSTED: "Too many requests — wait a moment and try again.",
  PROVIDER_UNAVAILABLE: "The AI provider is having trouble right now. Try again shortly.",
  GENERATION_UNAVAILABLE: "Generation is unavailable right now. Try again shortly.",
  UNAVAILABLE: "klik is unavailable right now. Try again shortly.",
  EMAIL_NOT_VERIFIED: "Verify your email address first: follow the link we mailed you.",
  EMAIL_ALREADY_VERIFIED: "Your email address is already verified.",
  INVALID_VERIFICATION_TOKEN: "That verification link is unknown or has expired. Ask for a new one.",
  INVALID_RESET_TOKEN: "That password-reset link is unknown, expired or already used. Ask for a new one.",
  WEAK_PASSWORD: "Choose a stronger password: at least 8 characters, not a common one.",
  TOO_MANY_ATTEMPTS: "Too many attempts — wait a while and try again.",
  TOO_MANY_REQUESTS: "We mailed you a link moments ago — wait a minute before asking again.",
  PERMISSION_DENIED: "You're not allowed to do that.",
  PACK_NOT_FOUND: "That credit pack is no longer on sale.",
  PAYMENTS_UNAVAILABLE: "Payments are unavailable right now; nothing was charged. Try again shortly.",
  INVALID_RETURN_URL: "Buying credits is not set up for this address of klik (its operator allows return addresses in KLIK_CHECKOUT_RETURN_ORIGINS).",
  TOO_MANY_STREAMS: "Too many live streams are open — close another tab and try again.",
  JOB_NOT_FOUND: "That generation was not found.",
  PREMIUM_REQUIRED: "That model is for premium subscribers: subscribe to a plan with premium models in your wallet.",
  ALREADY_SUBSCRIBED: "You already have a plan: change or cancel it with Manage billing.",
  PLAN_NOT_FOUND: "That plan is no longer on sale.",
  NO_BILLING_ACCOUNT: "There is no billing to manage yet: buy credits or subscribe first.",
  WALLET_IN_DEBT: "Your wallet owes credits for a refunded payment: buy credits to settle it first.",
  INVALID_OPTIONS: "One of the settings is not accepted.",
  UPLOAD_TOO_LARGE: "That file is too large to upload (10 MiB at most).",
  INVALID_UPLOAD_SIZE: "That file is empty or too large to upload.",
  UNSUPPORTED_UPLOAD_TYPE: "Only PNG, JPEG, WebP and GIF images can be uploaded.",
  UPLOAD_TYPE_MISMATCH: "That file's contents are not the image type its name says.",
  UPLOAD_SIZE_MISMATCH: "The file did not arrive whole. Try again.",
  UPLOAD_URL_EXPIRED: "The upload took too long and its address expired. Try again.",
  UPLOAD_EXPIRED: "The upload took too long and its address expired. Try again.",
  UPLOAD_NOT_RECEIVED: "The file did not arrive. Try again.",
  UPLOADS_DISABLED: "Uploads are turned off on this klik.",
  ASSISTANT_NOT_FOUND: "That assistant was not found (it may have been deleted or made private).",
  AVATAR_NOT_IMAGE: "Only an image can be your profile picture.",
  INVALID_AVATAR: "That is not one of your images.",
  ASSET_NOT_FOUND: "That image is not one of yours, or it was deleted.",
  CONTENT_UNAVAILABLE: "Your images cannot be checked right now; nothing changed. Try again shortly.",
};

const BY_HTTP_STATUS: Record<number, string> = {
  400: "The request was not accepted.",
  401: "Your session has ended. Please sign in again.",
  402: "You don't have enough credits for this.",
  403: "You're not allowed to do that.",
  404: "That was not found.",
  409: "That conflicts with something that changed meanwhile. Try again.",
  413: "That is too large.",
  429: "Too many requests — wait a moment and try again.",
  500: "Something went wrong on klik's side.",
  502: "klik could not reach one of its services.",
  503: "klik is unavailable right now. Try again shortly.",
  504: "klik took too long to answer. Try again.",
};

function sentence(text: string): string {
  const trimmed = text.trim();
  if (!trimmed) return "";
  const first = trimmed.charAt(0).toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** Any failure (ApiError, network failure, anything thrown) in words for people. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    const advice = ADVICE[error.code] ?? ADVICE[error.status] ?? "";
    const said = sentence(error.message);
    const general = BY_HTTP_STATUS[error.httpStatus] ?? `klik answered ${error.httpStatus}.`;
    const parts = [advice, said].filter((p, i, all) => p && all.indexOf(p) === i);
    return parts.length ? parts.join(" ") : general;
  }
  if (error instanceof TypeError) {
    return "Could not reach klik. Check your connection and try again.";
  }
  if (error instanceof Error && error.message) return sentence(error.message);
  return "Something went wrong.";
}
