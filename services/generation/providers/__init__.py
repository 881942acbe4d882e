"""Provider adapters over one shared `httpx.AsyncClient`: an OpenAI-compatible chat
endpoint (TEXT, CHAT), Leonardo (IMAGE) and HeyGen (AVATAR_VIDEO). Every call goes
through `http.ProviderHttp` (timeouts, retries with backoff and jitter, a circuit
breaker per provider); `registry.Providers` builds them from the catalogue.

Jobs that run on the provider's side are split in two so a resumed worker never
pays twice: `start` returns the provider's job id (store it), `poll`/`wait` follow
that id."""
