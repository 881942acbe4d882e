"""The content service, as auth uses it: resolving the asset a user picks as their
avatar to its file URL (klik.content.v1.AvatarService, internal; UpdateMe).

Calls present auth's service identity (`resources.channel("content")`, kit.identity);
content refuses anyone else. Content's refusals (ASSET_NOT_FOUND, AVATAR_NOT_IMAGE)
reach the user as content said them; anything else is CONTENT_UNAVAILABLE, and the
profile is left as it was."""

from __future__ import annotations

from collections.abc import Callable

import grpc

from kit import errors
from kit.errors import DomainError, peer_refusal
from klik.content.v1 import avatars_pb2, avatars_pb2_grpc

CALL_TIMEOUT_SECONDS = 5.0

# Content's answers about the asset itself, passed on; anything else (a bare status,
# its refusing auth's identity) is trouble between the services, not the user's.
CONTENT_REFUSALS = frozenset({grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT})


def content_error(error: grpc.aio.AioRpcError) -> DomainError:
    refusal = peer_refusal(error, bare=False)
    if refusal is None or refusal.code not in CONTENT_REFUSALS:
        return errors.Unavailable(
            "CONTENT_UNAVAILABLE", "cannot check the avatar asset right now; try again"
        )
    return refusal


class Avatars:
    """Resolves avatar assets on content (AvatarService.ResolveAvatar)."""

    def __init__(self, channel: Callable[[], grpc.aio.Channel]) -> None:
        self._channel = channel

    async def url(self, user_id: str, asset_id: str) -> str:
        """The file URL of `user_id`'s image asset `asset_id`; content's NOT_FOUND
        `ASSET_NOT_FOUND` / INVALID_ARGUMENT `AVATAR_NOT_IMAGE` as it said them."""
        stub = avatars_pb2_grpc.AvatarServiceStub(self._channel())
        request = avatars_pb2.ResolveAvatarRequest(user_id=user_id, asset_id=asset_id)
        try:
            reply = await stub.ResolveAvatar(request, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as error:
            raise content_error(error) from None
        return str(reply.url)
