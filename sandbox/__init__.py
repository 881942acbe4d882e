"""The sandbox: a small local HTTP server (`python -m sandbox`) that stands in for
the outside systems klik talks to, one module per system: an OpenAI-compatible LLM
server (`llm`), Anthropic's Messages API (`anthropic`), Leonardo images (`leonardo`)
and HeyGen avatar videos (`heygen`); the LLMs also stream (`streaming`).
It speaks their HTTP shapes with deterministic results (`content`, and the files
they point at: `files`, `png`, `mp4`) and injects faults on demand. The real adapters
run against it unchanged; it is no model, and every result it serves says `provider:
sandbox`.

Faults (latency, N x 429 with Retry-After, 5xx, hang, malformed body, failed or stuck
jobs; for streams a token rate, a connection dropped or a stall after N tokens) are
chosen per request with an `X-Sandbox-Fault` header or a `[[fault:...]]` marker in
the prompt, or for every request with `POST /_sandbox/faults`; see `faults.py` for
the syntax. `GET /_sandbox/requests` lists what reached it and `GET
/_sandbox/streams` how its recent streams ended (`control`). `serving` is what every
system's requests pass through; `app` puts the systems together."""
