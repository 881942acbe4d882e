import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from klik.generation.v1 import generation_pb2 as _generation_pb2
from klik.options.v1 import options_pb2 as _options_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UserRegistered(_message.Message):
    __slots__ = ("user_id", "email", "display_name", "role", "handle")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    display_name: str
    role: str
    handle: str
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ..., display_name: _Optional[str] = ..., role: _Optional[str] = ..., handle: _Optional[str] = ...) -> None: ...

class UserEmailVerified(_message.Message):
    __slots__ = ("user_id", "email")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    email: str
    def __init__(self, user_id: _Optional[str] = ..., email: _Optional[str] = ...) -> None: ...

class UserProfileChanged(_message.Message):
    __slots__ = ("user_id", "handle", "display_name", "bio", "avatar_url")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    HANDLE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    BIO_FIELD_NUMBER: _ClassVar[int]
    AVATAR_URL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    handle: str
    display_name: str
    bio: str
    avatar_url: str
    def __init__(self, user_id: _Optional[str] = ..., handle: _Optional[str] = ..., display_name: _Optional[str] = ..., bio: _Optional[str] = ..., avatar_url: _Optional[str] = ...) -> None: ...

class UserDeleted(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class SessionRevoked(_message.Message):
    __slots__ = ("user_id", "session_id", "revoked_at")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    session_id: str
    revoked_at: _timestamp_pb2.Timestamp
    def __init__(self, user_id: _Optional[str] = ..., session_id: _Optional[str] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UserRoleChanged(_message.Message):
    __slots__ = ("user_id", "old_role", "new_role")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    OLD_ROLE_FIELD_NUMBER: _ClassVar[int]
    NEW_ROLE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    old_role: str
    new_role: str
    def __init__(self, user_id: _Optional[str] = ..., old_role: _Optional[str] = ..., new_role: _Optional[str] = ...) -> None: ...

class WalletChanged(_message.Message):
    __slots__ = ("user_id", "balance", "held", "available", "transaction_id", "kind", "amount", "debt")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    DEBT_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    balance: int
    held: int
    available: int
    transaction_id: str
    kind: str
    amount: int
    debt: int
    def __init__(self, user_id: _Optional[str] = ..., balance: _Optional[int] = ..., held: _Optional[int] = ..., available: _Optional[int] = ..., transaction_id: _Optional[str] = ..., kind: _Optional[str] = ..., amount: _Optional[int] = ..., debt: _Optional[int] = ...) -> None: ...

class PlanChanged(_message.Message):
    __slots__ = ("user_id", "plan_id", "active", "period_end", "premium", "version")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLAN_ID_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    PERIOD_END_FIELD_NUMBER: _ClassVar[int]
    PREMIUM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    plan_id: str
    active: bool
    period_end: _timestamp_pb2.Timestamp
    premium: bool
    version: int
    def __init__(self, user_id: _Optional[str] = ..., plan_id: _Optional[str] = ..., active: _Optional[bool] = ..., period_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., premium: _Optional[bool] = ..., version: _Optional[int] = ...) -> None: ...

class WalletLowBalance(_message.Message):
    __slots__ = ("user_id", "available", "threshold")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    available: int
    threshold: int
    def __init__(self, user_id: _Optional[str] = ..., available: _Optional[int] = ..., threshold: _Optional[int] = ...) -> None: ...

class JobTransitioned(_message.Message):
    __slots__ = ("job", "previous_status")
    JOB_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    job: _generation_pb2.Job
    previous_status: str
    def __init__(self, job: _Optional[_Union[_generation_pb2.Job, _Mapping]] = ..., previous_status: _Optional[str] = ...) -> None: ...

class PostPublished(_message.Message):
    __slots__ = ("post_id", "author_id", "published_at")
    POST_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_AT_FIELD_NUMBER: _ClassVar[int]
    post_id: str
    author_id: str
    published_at: _timestamp_pb2.Timestamp
    def __init__(self, post_id: _Optional[str] = ..., author_id: _Optional[str] = ..., published_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class NotificationCreated(_message.Message):
    __slots__ = ("notification_id", "user_id", "kind", "text", "subject_id", "created_at")
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    notification_id: str
    user_id: str
    kind: str
    text: str
    subject_id: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, notification_id: _Optional[str] = ..., user_id: _Optional[str] = ..., kind: _Optional[str] = ..., text: _Optional[str] = ..., subject_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
