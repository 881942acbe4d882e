"""The public services the gateway routes, by upstream: their descriptors come from
the generated modules, their routes from the descriptors' annotations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from google.protobuf.descriptor import ServiceDescriptor

from klik.auth.v1 import auth_pb2
from klik.content.v1 import content_pb2
from klik.generation.v1 import generation_pb2
from klik.wallet.v1 import wallet_pb2

PUBLIC_SERVICES: Mapping[str, Sequence[ServiceDescriptor]] = {
    "auth": (auth_pb2.DESCRIPTOR.services_by_name["AuthService"],),
    "wallet": (wallet_pb2.DESCRIPTOR.services_by_name["WalletService"],),
    "generation": (generation_pb2.DESCRIPTOR.services_by_name["GenerationService"],),
    "content": (content_pb2.DESCRIPTOR.services_by_name["ContentService"],),
}
