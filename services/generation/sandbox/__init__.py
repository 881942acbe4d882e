"""The provider sandbox: a small local HTTP server (`python -m services.generation.sandbox`)
that speaks the HTTP shapes of the providers generation calls — OpenAI-compatible
chat completions, Leonardo image generations, HeyGen avatar videos — with
deterministic results, and injects faults on demand. The real adapters run against
it unchanged; it is no model, and every result it serves says `provider: sandbox`.

Faults (latency, N x 429 with Retry-After, 5xx, hang, malformed body, failed or stuck
jobs) are chosen per request with an `X-Sandbox-Fault` header or a `[[fault:...]]`
marker in the prompt, or for every request with `POST /_sandbox/faults`; see
`faults.py` for the syntax. `GET /_sandbox/requests` lists what reached it."""
