"""The contracts the gateway serves: the public services it routes, by upstream (their
routes come from the descriptors' annotations), and the files of the event payloads it
may stream (which ones it streams, and under which types, their options say)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor

from klik.auth.v1 import auth_pb2
from klik.content.v1 import content_pb2
from klik.events.v1 import events_pb2
from klik.generation.v1 import generation_pb2
from klik.wallet.v1 import wallet_pb2

PUBLIC_SERVICES: Mapping[str, Sequence[ServiceDescriptor]] = {
    "auth": (auth_pb2.DESCRIPTOR.services_by_name["AuthService"],),
    "wallet": (wallet_pb2.DESCRIPTOR.services_by_name["WalletService"],),
    "generation": (generation_pb2.DESCRIPTOR.services_by_name["GenerationService"],),
    "content": (content_pb2.DESCRIPTOR.services_by_name["ContentService"],),
}

EVENT_FILES: Sequence[FileDescriptor] = (events_pb2.DESCRIPTOR,)
