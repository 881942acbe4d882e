"""`KlikClient`: klik's public HTTP API (the gateway's OpenAPI document, `/openapi.json`)
as typed async methods over httpx. Each method is one route of `ROUTES`; a non-2xx
answer raises `KlikError`; a 401 refreshes the session once and retries; `events()`
is the caller's Server-Sent Events stream as an async iterator."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

import httpx

from klik_client.errors import KlikError
from klik_client.types import (
    Asset,
    Chat,
    Event,
    Job,
    Lesson,
    Post,
    Price,
    Provider,
    SentMessage,
    Tokens,
    Transaction,
    User,
    Wallet,
)

T = TypeVar("T")

# The routes called without the session's access token (their body is the credential).
PUBLIC = frozenset(
    {
        "register",
        "login",
        "refresh",
        "pricing",
        "verify_email",
        "request_password_reset",
        "confirm_password_reset",
    }
)

# Method name -> (HTTP method, path template): every route the client calls, each one
# an operation of the OpenAPI document (tests/clients checks it).
ROUTES: dict[str, tuple[str, str]] = {
    "register": ("POST", "/v1/auth/register"),
    "login": ("POST", "/v1/auth/login"),
    "refresh": ("POST", "/v1/auth/refresh"),
    "logout": ("POST", "/v1/auth/logout"),
    "me": ("GET", "/v1/auth/me"),
    "change_password": ("POST", "/v1/auth/password"),
    "verify_email": ("POST", "/v1/auth/verify-email"),
    "resend_verification": ("POST", "/v1/auth/verify-email:resend"),
    "request_password_reset": ("POST", "/v1/auth/password-reset"),
    "confirm_password_reset": ("POST", "/v1/auth/password-reset:confirm"),
    "wallet": ("GET", "/v1/wallet"),
    "transactions": ("GET", "/v1/wallet/transactions"),
    "transfer": ("POST", "/v1/wallet/transfers"),
    "create_generation": ("POST", "/v1/generations"),
    "generations": ("GET", "/v1/generations"),
    "generation": ("GET", "/v1/generations/{job_id}"),
    "cancel_generation": ("POST", "/v1/generations/{job_id}:cancel"),
    "pricing": ("GET", "/v1/pricing"),
    "providers": ("GET", "/v1/providers"),
    "create_post": ("POST", "/v1/posts"),
    "posts": ("GET", "/v1/posts"),
    "post": ("GET", "/v1/posts/{post_id}"),
    "update_post": ("PATCH", "/v1/posts/{post_id}"),
    "delete_post": ("DELETE", "/v1/posts/{post_id}"),
    "publish_post": ("POST", "/v1/posts/{post_id}:publish"),
    "assets": ("GET", "/v1/assets"),
    "asset": ("GET", "/v1/assets/{asset_id}"),
    "create_chat": ("POST", "/v1/chats"),
    "chats": ("GET", "/v1/chats"),
    "chat": ("GET", "/v1/chats/{chat_id}"),
    "send_message": ("POST", "/v1/chats/{chat_id}/messages"),
    "create_lesson": ("POST", "/v1/lessons"),
    "lessons": ("GET", "/v1/lessons"),
    "lesson": ("GET", "/v1/lessons/{lesson_id}"),
    "publish_lesson": ("POST", "/v1/lessons/{lesson_id}:publish"),
    "users": ("GET", "/v1/admin/users"),
    "set_role": ("POST", "/v1/admin/users/{user_id}/role"),
    "delete_user": ("DELETE", "/v1/admin/users/{user_id}"),
    "grant_credits": ("POST", "/v1/admin/wallets/{user_id}/credits"),
    "events": ("GET", "/v1/events"),
}

FINISHED = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list route; pass `next_page_token` back for the next ("" = last)."""

    items: list[T]
    next_page_token: str = ""


@dataclass
class Session:
    access_token: str = ""
    refresh_token: str = ""


@dataclass
class KlikClient:
    """klik's API at `base_url` (the gateway, e.g. http://127.0.0.1:8080)."""

    base_url: str
    session: Session = field(default_factory=Session)
    timeout: float = 30.0
    transport: httpx.AsyncBaseTransport | None = None
    _http: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    async def __aenter__(self) -> KlikClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url.rstrip("/"),
                timeout=httpx.Timeout(self.timeout),
                transport=self.transport,
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # --- the one way every call is made -------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        authenticated: bool = True,
    ) -> Any:
        """One call of any route: its JSON answer, or KlikError."""
        query = {k: v for k, v in (params or {}).items() if v not in (None, "")}
        response = await self._send(method, path, json, query, authenticated)
        if response.status_code == 401 and authenticated and await self._refreshed():
            response = await self._send(method, path, json, query, authenticated)
        if response.is_error:
            raise KlikError.from_response(response)
        return response.json() if response.content else {}

    async def _send(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        query: Mapping[str, Any],
        authenticated: bool,
    ) -> httpx.Response:
        return await self.http.request(
            method, path, json=body, params=query, headers=self._auth(authenticated)
        )

    def _auth(self, authenticated: bool = True) -> dict[str, str]:
        token = self.session.access_token
        return {"Authorization": f"Bearer {token}"} if authenticated and token else {}

    async def _call(self, name: str, /, body: Mapping[str, Any] | None = None, **kw: Any) -> Any:
        method, template = ROUTES[name]
        path_args = {k: kw.pop(k) for k in list(kw) if "{" + k + "}" in template}
        path = template.format(**{k: httpx.URL(str(v)).path for k, v in path_args.items()})
        public = name in PUBLIC
        return await self.request(method, path, json=body, params=kw, authenticated=not public)

    async def _refreshed(self) -> bool:
        if not self.session.refresh_token:
            return False
        try:
            await self.refresh()
        except KlikError:
            return False
        return True

    # --- accounts ---------------------------------------------------------------

    async def register(self, email: str, password: str, display_name: str = "") -> User:
        body = {"email": email, "password": password, "display_name": display_name or email}
        return cast(User, await self._call("register", body))

    async def login(self, email: str, password: str) -> Tokens:
        """Sign in; the client keeps the tokens for the calls that follow."""
        tokens = cast(Tokens, await self._call("login", {"email": email, "password": password}))
        self.session = Session(tokens.get("access_token", ""), tokens.get("refresh_token", ""))
        return tokens

    async def refresh(self) -> Tokens:
        body = {"refresh_token": self.session.refresh_token}
        tokens = cast(Tokens, await self._call("refresh", body))
        self.session = Session(tokens.get("access_token", ""), tokens.get("refresh_token", ""))
        return tokens

    async def logout(self) -> None:
        await self._call("logout", {"refresh_token": self.session.refresh_token})
        self.session = Session()

    async def me(self) -> User:
        return cast(User, await self._call("me"))

    async def change_password(self, current_password: str, new_password: str) -> None:
        body = {"current_password": current_password, "new_password": new_password}
        await self._call("change_password", body)

    async def verify_email(self, token: str) -> User:
        """Follow a verification link: `token` is its `token` query parameter. The
        session's access token still says unverified until `refresh()` (or a login)."""
        return cast(User, await self._call("verify_email", {"token": token}))

    async def resend_verification(self) -> None:
        """Mail the signed-in account a new verification link."""
        await self._call("resend_verification", {})

    async def request_password_reset(self, email: str) -> None:
        """Mail a reset link to `email` if it has an account (answers the same if not)."""
        await self._call("request_password_reset", {"email": email})

    async def confirm_password_reset(self, token: str, new_password: str) -> None:
        """Set a new password with a reset link's `token`; every session of the account
        ends, this client's included."""
        await self._call("confirm_password_reset", {"token": token, "new_password": new_password})
        self.session = Session()

    # --- wallet -------------------------------------------------------------------

    async def wallet(self) -> Wallet:
        return cast(Wallet, await self._call("wallet"))

    async def transactions(self, page_size: int = 0, page_token: str = "") -> Page[Transaction]:
        data = await self._call("transactions", page_size=page_size or None, page_token=page_token)
        return Page(data.get("transactions", []), data.get("next_page_token", ""))

    # --- generations --------------------------------------------------------------

    async def create_generation(
        self,
        kind: str,
        prompt: str,
        *,
        model: str = "",
        provider: str = "",
        options: Mapping[str, Any] | None = None,
        idempotency_key: str = "",
    ) -> Job:
        body: dict[str, Any] = {"kind": kind, "prompt": prompt, "model": model}
        body.update(provider=provider, idempotency_key=idempotency_key)
        if options:
            body["options"] = dict(options)
        return cast(Job, await self._call("create_generation", body))

    async def generation(self, job_id: str) -> Job:
        return cast(Job, await self._call("generation", job_id=job_id))

    async def generations(
        self, status: str = "", page_size: int = 0, page_token: str = ""
    ) -> Page[Job]:
        data = await self._call(
            "generations", status=status, page_size=page_size or None, page_token=page_token
        )
        return Page(data.get("jobs", []), data.get("next_page_token", ""))

    async def cancel_generation(self, job_id: str) -> Job:
        return cast(Job, await self._call("cancel_generation", {}, job_id=job_id))

    async def pricing(self) -> list[Price]:
        return cast(list[Price], (await self._call("pricing")).get("prices", []))

    async def providers(self) -> list[Provider]:
        return cast(list[Provider], (await self._call("providers")).get("providers", []))

    async def wait_for_job(self, job_id: str) -> Job:
        """The job once it has finished, watched over `/v1/events` (wrap the call in
        `asyncio.timeout` to bound the wait)."""
        async with self.event_stream() as events:
            job = await self.generation(job_id)  # it may have finished before the stream
            if job.get("status") in FINISHED:
                return job
            async for event in events:
                payload = event["data"].get("payload", {})
                seen = cast(Job, payload.get("job", {}))
                if seen.get("id") == job_id and seen.get("status") in FINISHED:
                    return await self.generation(job_id)
        raise KlikError(0, "STREAM_ENDED", "UNAVAILABLE", "the event stream ended")

    # --- content ------------------------------------------------------------------

    async def create_post(
        self, title: str, body: str = "", asset_ids: list[str] | None = None, **extra: Any
    ) -> Post:
        fields = {"title": title, "body": body, "asset_ids": asset_ids or [], **extra}
        return cast(Post, await self._call("create_post", fields))

    async def publish_post(self, post_id: str) -> Post:
        return cast(Post, await self._call("publish_post", {}, post_id=post_id))

    async def post(self, post_id: str) -> Post:
        return cast(Post, await self._call("post", post_id=post_id))

    async def update_post(self, post_id: str, **fields: Any) -> Post:
        return cast(Post, await self._call("update_post", fields, post_id=post_id))

    async def delete_post(self, post_id: str) -> None:
        await self._call("delete_post", post_id=post_id)

    async def posts(
        self, author_id: str = "", page_size: int = 0, page_token: str = ""
    ) -> Page[Post]:
        """The feed: published public posts, newest first."""
        data = await self._call(
            "posts", author_id=author_id, page_size=page_size or None, page_token=page_token
        )
        return Page(data.get("posts", []), data.get("next_page_token", ""))

    async def assets(self, kind: str = "", page_size: int = 0, page_token: str = "") -> Page[Asset]:
        data = await self._call(
            "assets", kind=kind, page_size=page_size or None, page_token=page_token
        )
        return Page(data.get("assets", []), data.get("next_page_token", ""))

    async def asset(self, asset_id: str) -> Asset:
        return cast(Asset, await self._call("asset", asset_id=asset_id))

    async def create_chat(self, title: str = "", model: str = "") -> Chat:
        return cast(Chat, await self._call("create_chat", {"title": title, "model": model}))

    async def chat(self, chat_id: str) -> Chat:
        return cast(Chat, await self._call("chat", chat_id=chat_id))

    async def chats(self, page_size: int = 0, page_token: str = "") -> Page[Chat]:
        data = await self._call("chats", page_size=page_size or None, page_token=page_token)
        return Page(data.get("chats", []), data.get("next_page_token", ""))

    async def send_message(
        self, chat_id: str, content: str, idempotency_key: str = ""
    ) -> SentMessage:
        body = {"content": content, "idempotency_key": idempotency_key}
        return cast(SentMessage, await self._call("send_message", body, chat_id=chat_id))

    async def create_lesson(
        self,
        topic: str,
        content_type: str = "lesson",
        difficulty: int = 3,
        idempotency_key: str = "",
    ) -> Lesson:
        body = {"topic": topic, "content_type": content_type, "difficulty": difficulty}
        body["idempotency_key"] = idempotency_key
        return cast(Lesson, await self._call("create_lesson", body))

    async def lesson(self, lesson_id: str) -> Lesson:
        return cast(Lesson, await self._call("lesson", lesson_id=lesson_id))

    async def lessons(self, page_size: int = 0, page_token: str = "") -> Page[Lesson]:
        data = await self._call("lessons", page_size=page_size or None, page_token=page_token)
        return Page(data.get("lessons", []), data.get("next_page_token", ""))

    async def publish_lesson(self, lesson_id: str) -> Lesson:
        return cast(Lesson, await self._call("publish_lesson", {}, lesson_id=lesson_id))

    # --- admin --------------------------------------------------------------------

    async def users(self, page_size: int = 0, page_token: str = "") -> Page[User]:
        data = await self._call("users", page_size=page_size or None, page_token=page_token)
        return Page(data.get("users", []), data.get("next_page_token", ""))

    async def set_role(self, user_id: str, role: str) -> User:
        return cast(User, await self._call("set_role", {"role": role}, user_id=user_id))

    async def delete_user(self, user_id: str) -> None:
        await self._call("delete_user", user_id=user_id)

    async def grant_credits(self, user_id: str, amount: int, reason: str = "") -> Transaction:
        body = {"amount": str(amount), "reason": reason}
        return cast(Transaction, await self._call("grant_credits", body, user_id=user_id))

    # --- live events ----------------------------------------------------------------

    def event_stream(self, last_event_id: str = "") -> EventStream:
        """`async with client.event_stream() as events: async for event in events: …`
        — the stream is open (so nothing that happens next is missed) once the
        `async with` is entered."""
        return EventStream(self, last_event_id)

    async def events(self, last_event_id: str = "") -> AsyncIterator[Event]:
        """The caller's events as they happen, e.g. `async for e in client.events(): …`."""
        async with self.event_stream(last_event_id) as stream:
            async for event in stream:
                yield event


class EventStream:
    """One open `/v1/events` stream (Server-Sent Events) as an async iterator of Event."""

    def __init__(self, client: KlikClient, last_event_id: str = "") -> None:
        self.client = client
        self.last_event_id = last_event_id
        self._response: httpx.Response | None = None
        self._stream: Any = None

    async def __aenter__(self) -> EventStream:
        headers = self.client._auth()
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        timeout = httpx.Timeout(self.client.timeout, read=None)
        self._stream = self.client.http.stream(
            "GET", "/v1/events", headers=headers, timeout=timeout
        )
        self._response = await self._stream.__aenter__()
        if self._response.is_error:
            await self._response.aread()
            error = KlikError.from_response(self._response)
            await self._stream.__aexit__(None, None, None)
            raise error
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._stream is not None:
            await self._stream.__aexit__(*exc)

    def __aiter__(self) -> AsyncIterator[Event]:
        assert self._response is not None, "use `async with client.event_stream()`"
        return parse_events(self._response.aiter_lines())


async def parse_events(lines: AsyncIterator[str]) -> AsyncIterator[Event]:
    """Server-Sent Events from a stream of lines: `id:`, `event:`, `data:` (JSON);
    comment lines (heartbeats) skipped."""
    event_id, event_type = "", "message"
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield Event(id=event_id, type=event_type, data=json.loads("\n".join(data)))
            event_type, data = "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "event":
            event_type = value
        elif name == "data":
            data.append(value)
