"""The shapes the main routes return, as in the gateway's OpenAPI document
(`/openapi.json`, generated from the protos): proto field names, 64-bit integers as
strings, fields left out when they hold their default."""

from __future__ import annotations

from typing import Any, TypedDict


class User(TypedDict, total=False):
    id: str
    email: str
    display_name: str
    role: str
    created_at: str
    email_verified: bool


class Tokens(TypedDict, total=False):
    access_token: str
    refresh_token: str
    token_type: str
    expires_in: int
    user: User


class Wallet(TypedDict, total=False):
    user_id: str
    balance: str
    held: str
    available: str
    updated_at: str


class Transaction(TypedDict, total=False):
    id: str
    kind: str
    amount: str
    balance_after: str
    reference: str
    description: str
    created_at: str


class JobResult(TypedDict, total=False):
    text: str
    asset_url: str
    mime_type: str
    usage: dict[str, Any]


class JobError(TypedDict, total=False):
    code: str
    message: str


class Job(TypedDict, total=False):
    id: str
    user_id: str
    kind: str
    status: str
    prompt: str
    provider: str
    model: str
    result: JobResult
    error: JobError
    cost_credits: str
    created_at: str
    updated_at: str


class Price(TypedDict, total=False):
    kind: str
    model: str
    unit: str
    credits_per_unit: str
    minimum_credits: str


class Provider(TypedDict, total=False):
    name: str
    kinds: list[str]
    models: list[dict[str, Any]]
    avatars: list[dict[str, Any]]
    voices: list[dict[str, Any]]
    circuit_state: str
    sandbox: bool


class Post(TypedDict, total=False):
    id: str
    author_id: str
    title: str
    body: str
    asset_ids: list[str]
    visibility: str
    status: str
    created_at: str
    updated_at: str


class Asset(TypedDict, total=False):
    id: str
    owner_id: str
    job_id: str
    kind: str
    text: str
    url: str
    mime_type: str
    created_at: str


class ChatMessage(TypedDict, total=False):
    id: str
    role: str
    content: str
    job_id: str
    created_at: str


class Chat(TypedDict, total=False):
    id: str
    owner_id: str
    title: str
    model: str
    messages: list[ChatMessage]
    created_at: str
    updated_at: str


class SentMessage(TypedDict, total=False):
    message: ChatMessage
    job_id: str


class Lesson(TypedDict, total=False):
    id: str
    owner_id: str
    topic: str
    content_type: str
    difficulty: int
    status: str
    body: str
    job_id: str
    created_at: str


class Event(TypedDict):
    """One event of `/v1/events`: its stream position, type and envelope."""

    id: str
    type: str
    data: dict[str, Any]  # the envelope: id, type, user_id, occurred_at, payload, …
