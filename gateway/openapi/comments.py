"""Proto comments by element full name, from a FileDescriptorSet that carries source
info. The generated *_pb2 modules drop comments, so `make proto` also writes
klik/descriptors.binpb (protoc --include_source_info) for this."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from importlib import resources

from google.protobuf import descriptor_pb2

log = logging.getLogger(__name__)

DESCRIPTOR_SET = "descriptors.binpb"  # in the `klik` package

# Field numbers of FileDescriptorProto / DescriptorProto / ... that source paths use.
_FILE_MESSAGES, _FILE_ENUMS, _FILE_SERVICES = 4, 5, 6
_MESSAGE_FIELDS, _MESSAGE_NESTED, _MESSAGE_ENUMS = 2, 3, 4
_ENUM_VALUES, _SERVICE_METHODS = 2, 2

Path = tuple[int, ...]


def load_comments(data: bytes) -> dict[str, str]:
    """`{"klik.auth.v1.User.email": "Email address...", ...}`: leading comments of
    messages, fields, enums, enum values, services and methods."""
    found: dict[str, str] = {}
    for file in descriptor_pb2.FileDescriptorSet.FromString(data).file:
        names = dict(_elements(file))
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            if name is not None and location.leading_comments.strip():
                found[name] = clean(location.leading_comments)
    return found


def packaged_comments() -> dict[str, str]:
    try:
        data = resources.files("klik").joinpath(DESCRIPTOR_SET).read_bytes()
    except OSError:
        log.warning("klik/%s missing: the API document has no descriptions", DESCRIPTOR_SET)
        return {}
    return load_comments(data)


def clean(comment: str) -> str:
    """Strip the one space after `//` and surrounding blank lines; keep the rest."""
    lines = [line[1:] if line.startswith(" ") else line for line in comment.splitlines()]
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def _elements(file: descriptor_pb2.FileDescriptorProto) -> Iterator[tuple[Path, str]]:
    package = file.package
    yield from _messages(package, file.message_type, (_FILE_MESSAGES,))
    yield from _enums(package, file.enum_type, (_FILE_ENUMS,))
    for i, service in enumerate(file.service):
        name = f"{package}.{service.name}"
        yield (_FILE_SERVICES, i), name
        for j, method in enumerate(service.method):
            yield (_FILE_SERVICES, i, _SERVICE_METHODS, j), f"{name}.{method.name}"


def _messages(
    scope: str, messages: Sequence[descriptor_pb2.DescriptorProto], path: Path
) -> Iterator[tuple[Path, str]]:
    for i, message in enumerate(messages):
        name = f"{scope}.{message.name}"
        here = (*path, i)
        yield here, name
        for j, field in enumerate(message.field):
            yield (*here, _MESSAGE_FIELDS, j), f"{name}.{field.name}"
        yield from _messages(name, message.nested_type, (*here, _MESSAGE_NESTED))
        yield from _enums(name, message.enum_type, (*here, _MESSAGE_ENUMS))


def _enums(
    scope: str, enums: Sequence[descriptor_pb2.EnumDescriptorProto], path: Path
) -> Iterator[tuple[Path, str]]:
    for i, enum in enumerate(enums):
        name = f"{scope}.{enum.name}"
        yield (*path, i), name
        for j, value in enumerate(enum.value):
            # Enum values live in the enclosing scope in protobuf, but naming them
            # under the enum keeps them apart from fields of the same name.
            yield (*path, i, _ENUM_VALUES, j), f"{name}.{value.name}"
