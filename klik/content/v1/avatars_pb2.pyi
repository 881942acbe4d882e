from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ResolveAvatarRequest(_message.Message):
    __slots__ = ("user_id", "asset_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ASSET_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    asset_id: str
    def __init__(self, user_id: _Optional[str] = ..., asset_id: _Optional[str] = ...) -> None: ...

class ResolveAvatarResponse(_message.Message):
    __slots__ = ("url", "mime_type", "kind")
    URL_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    url: str
    mime_type: str
    kind: str
    def __init__(self, url: _Optional[str] = ..., mime_type: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...
