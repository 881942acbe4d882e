from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor
PUBLIC_FIELD_NUMBER: _ClassVar[int]
public: _descriptor.FieldDescriptor
REASON_STATUS_FIELD_NUMBER: _ClassVar[int]
reason_status: _descriptor.FieldDescriptor
FORWARD_HEADERS_FIELD_NUMBER: _ClassVar[int]
forward_headers: _descriptor.FieldDescriptor
REDIRECT_FIELD_FIELD_NUMBER: _ClassVar[int]
redirect_field: _descriptor.FieldDescriptor
MAX_LENGTH_FIELD_NUMBER: _ClassVar[int]
max_length: _descriptor.FieldDescriptor
EVENT_FIELD_NUMBER: _ClassVar[int]
event: _descriptor.FieldDescriptor

class ReasonStatus(_message.Message):
    __slots__ = ("reason", "http_status")
    REASON_FIELD_NUMBER: _ClassVar[int]
    HTTP_STATUS_FIELD_NUMBER: _ClassVar[int]
    reason: str
    http_status: int
    def __init__(self, reason: _Optional[str] = ..., http_status: _Optional[int] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("type", "variants", "streamed")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    STREAMED_FIELD_NUMBER: _ClassVar[int]
    type: str
    variants: _containers.RepeatedScalarFieldContainer[str]
    streamed: bool
    def __init__(self, type: _Optional[str] = ..., variants: _Optional[_Iterable[str]] = ..., streamed: _Optional[bool] = ...) -> None: ...
