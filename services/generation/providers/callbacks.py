"""The providers' webhooks, checked and read: which provider job a callback is
about, once its sender is proven.

- HeyGen signs each call with the endpoint's secret (`KLIK_HEYGEN_WEBHOOK_SECRET`):
  header `Signature`, the hex HMAC-SHA256 of the body exactly as sent; events
  `avatar_video.success` / `avatar_video.fail` name the video in
  `event_data.video_id`.
- Leonardo sends the webhook key configured on the API key
  (`KLIK_LEONARDO_WEBHOOK_KEY`) as `Authorization: Bearer <key>`; events
  `image_generation.complete` name the generation in `data.object.id`.

Comparisons are constant-time. A callback only wakes the poll of that job
(wakeups.py): what the job produced is always read back from the provider's API."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from kit.errors import FailedPrecondition, InvalidArgument

HEYGEN_EVENTS = frozenset({"avatar_video.success", "avatar_video.fail"})
LEONARDO_EVENTS = frozenset({"image_generation.complete"})


def _refused(message: str) -> InvalidArgument:
    return InvalidArgument("INVALID_SIGNATURE", message)


def _not_configured(provider: str, variable: str) -> FailedPrecondition:
    return FailedPrecondition(
        "WEBHOOK_NOT_CONFIGURED", f"{provider} callbacks are off: set {variable}"
    )


def _event(body: bytes) -> dict[str, Any]:
    try:
        event = json.loads(body)
    except ValueError:
        event = None
    if not isinstance(event, dict):
        raise InvalidArgument("MALFORMED_EVENT", "the callback's body is not a JSON object")
    return event


def heygen_job(secret: str, body: bytes, signature: str) -> str | None:
    """The video a HeyGen callback is about; None for an event of another type."""
    if not secret:
        raise _not_configured("HeyGen", "KLIK_HEYGEN_WEBHOOK_SECRET")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise _refused("the Signature header does not sign this body")
    event = _event(body)
    if event.get("event_type") not in HEYGEN_EVENTS:
        return None
    data = event.get("event_data")
    video_id = data.get("video_id") if isinstance(data, dict) else None
    if not isinstance(video_id, str) or not video_id:
        raise InvalidArgument("MALFORMED_EVENT", "event_data.video_id is missing")
    return video_id


def leonardo_job(key: str, body: bytes, authorization: str) -> str | None:
    """The generation a Leonardo callback is about; None for an event of another type."""
    if not key:
        raise _not_configured("Leonardo", "KLIK_LEONARDO_WEBHOOK_KEY")
    scheme, _, presented = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip(), key):
        raise _refused("the Authorization header does not carry the webhook key")
    event = _event(body)
    if event.get("type") not in LEONARDO_EVENTS:
        return None
    data = event.get("data")
    found = data.get("object") if isinstance(data, dict) else None
    generation_id = found.get("id") if isinstance(found, dict) else None
    if not isinstance(generation_id, str) or not generation_id:
        raise InvalidArgument("MALFORMED_EVENT", "data.object.id is missing")
    return generation_id
