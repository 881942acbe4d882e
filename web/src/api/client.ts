// klik's typed API client: openapi-fetch over the types generated from the
// gateway's OpenAPI document (schema.d.ts; `python scripts/gen_web_client.py`).
// Every call goes through `call`, which adds the access token, refreshes it once
// on a 401, and turns every non-2xx answer into an ApiError.
import createClient, { type Client } from "openapi-fetch";
import { ApiError, toApiError } from "./errors";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type User = Schemas["klik.auth.v1.User"];
export type Wallet = Schemas["klik.wallet.v1.Wallet"];
export type Transaction = Schemas["klik.wallet.v1.Transaction"];
export type Job = Schemas["klik.generation.v1.Job"];
export type CreateJob = Schemas["klik.generation.v1.CreateJobRequest"];
export type Price = Schemas["klik.generation.v1.Price"];
export type Provider = Schemas["klik.generation.v1.Provider"];
export type Post = Schemas["klik.content.v1.Post"];
export type Asset = Schemas["klik.content.v1.Asset"];
export type Chat = Schemas["klik.content.v1.Chat"];
export type ChatMessage = Schemas["klik.content.v1.ChatMessage"];
export type Lesson = Schemas["klik.content.v1.Lesson"];

export type Paths = paths;
export type RawClient = Client<paths>;

export interface Tokens {
  access: string;
  refresh: string;
}

/** Where the tokens live between page loads (localStorage in the app, memory in tests). */
export interface TokenStore {
  get(): Tokens | null;
  set(tokens: Tokens | null): void;
}

export function memoryTokens(initial: Tokens | null = null): TokenStore {
  let tokens = initial;
  return { get: () => tokens, set: (t) => void (tokens = t) };
}

export function localTokens(key = "klik.tokens"): TokenStore {
  return {
    get() {
      try {
        const raw = localStorage.getItem(key);
        return raw ? (JSON.parse(raw) as Tokens) : null;
      } catch {
        return null;
      }
    },
    set(tokens) {
      if (tokens) localStorage.setItem(key, JSON.stringify(tokens));
      else localStorage.removeItem(key);
    },
  };
}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

export class KlikClient {
  readonly raw: RawClient;
  readonly baseUrl: string;
  readonly tokens: TokenStore;
  private refreshing: Promise<boolean> | null = null;
  onSignedOut: () => void = () => {};

  constructor(baseUrl = "", tokens: TokenStore = memoryTokens(), fetchImpl?: typeof fetch) {
    this.baseUrl = baseUrl;
    this.tokens = tokens;
    this.raw = createClient<paths>({ baseUrl, fetch: fetchImpl });
    this.raw.use({
      onRequest: ({ request }) => {
        const access = this.tokens.get()?.access;
        if (access && !request.headers.has("Authorization")) {
          request.headers.set("Authorization", `Bearer ${access}`);
        }
        return request;
      },
    });
  }

  /** Run `send` (one openapi-fetch call); its data, or an ApiError. */
  async call<T>(send: (api: RawClient) => Promise<Answer<T>>): Promise<T> {
    let answer = await send(this.raw);
    if (answer.response.status === 401 && (await this.refresh())) {
      answer = await send(this.raw);
    }
    if (!answer.response.ok || answer.error !== undefined) {
      const error = toApiError(answer.response.status, answer.error);
      if (answer.response.status === 401) this.signOutLocally();
      throw error;
    }
    return answer.data as T;
  }

  /** An access token that is not about to expire (refreshed if it is), for EventSource. */
  async accessToken(now = Date.now()): Promise<string | null> {
    const access = this.tokens.get()?.access;
    if (!access) return null;
    const expires = tokenExpiry(access);
    if (expires !== null && expires - now < 15_000 && !(await this.refresh())) return null;
    return this.tokens.get()?.access ?? null;
  }

  /** Trade the refresh token for new tokens, once at a time; whether it worked. */
  refresh(): Promise<boolean> {
    const refresh = this.tokens.get()?.refresh;
    if (!refresh) return Promise.resolve(false);
    this.refreshing ??= (async () => {
      try {
        const { data, response } = await this.raw.POST("/v1/auth/refresh", {
          body: { refresh_token: refresh },
          headers: { Authorization: "" },
        });
        if (!response.ok || !data?.access_token || !data.refresh_token) return false;
        this.tokens.set({ access: data.access_token, refresh: data.refresh_token });
        return true;
      } catch {
        return false;
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  async login(email: string, password: string): Promise<User> {
    const data = await this.call((api) =>
      api.POST("/v1/auth/login", { body: { email, password } }),
    );
    this.tokens.set({ access: data.access_token ?? "", refresh: data.refresh_token ?? "" });
    return data.user ?? {};
  }

  async register(email: string, password: string, displayName: string): Promise<User> {
    await this.call((api) =>
      api.POST("/v1/auth/register", {
        body: { email, password, display_name: displayName },
      }),
    );
    return this.login(email, password);
  }

  async logout(): Promise<void> {
    const refresh = this.tokens.get()?.refresh ?? "";
    try {
      await this.call((api) => api.POST("/v1/auth/logout", { body: { refresh_token: refresh } }));
    } finally {
      this.signOutLocally();
    }
  }

  signOutLocally(): void {
    if (this.tokens.get() === null) return;
    this.tokens.set(null);
    this.onSignedOut();
  }
}

/** When a JWT expires (ms since the epoch), from its `exp` claim; null if unreadable. */
export function tokenExpiry(jwt: string): number | null {
  const part = jwt.split(".")[1];
  if (!part) return null;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp * 1000 : null;
  } catch {
    return null;
  }
}

export { ApiError };
