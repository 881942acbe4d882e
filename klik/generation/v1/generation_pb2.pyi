import datetime

from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.api import httpbody_pb2 as _httpbody_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from klik.options.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Job(_message.Message):
    __slots__ = ("id", "user_id", "kind", "status", "prompt", "provider", "model", "result", "error", "cost_credits", "created_at", "updated_at", "alias")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    COST_CREDITS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    id: str
    user_id: str
    kind: str
    status: str
    prompt: str
    provider: str
    model: str
    result: JobResult
    error: JobError
    cost_credits: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    alias: str
    def __init__(self, id: _Optional[str] = ..., user_id: _Optional[str] = ..., kind: _Optional[str] = ..., status: _Optional[str] = ..., prompt: _Optional[str] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ..., result: _Optional[_Union[JobResult, _Mapping]] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., cost_credits: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., alias: _Optional[str] = ...) -> None: ...

class JobResult(_message.Message):
    __slots__ = ("text", "asset_url", "mime_type", "usage", "usage_estimated")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ASSET_URL_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    USAGE_ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    text: str
    asset_url: str
    mime_type: str
    usage: Usage
    usage_estimated: bool
    def __init__(self, text: _Optional[str] = ..., asset_url: _Optional[str] = ..., mime_type: _Optional[str] = ..., usage: _Optional[_Union[Usage, _Mapping]] = ..., usage_estimated: _Optional[bool] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("prompt_tokens", "completion_tokens", "total_tokens", "video_seconds", "images")
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    VIDEO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    video_seconds: float
    images: int
    def __init__(self, prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., total_tokens: _Optional[int] = ..., video_seconds: _Optional[float] = ..., images: _Optional[int] = ...) -> None: ...

class JobError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class JobOptions(_message.Message):
    __slots__ = ("width", "height", "num_images", "avatar_id", "voice_id", "max_tokens", "temperature", "system_prompt", "negative_prompt", "max_video_seconds", "aspect_ratio", "quality", "input_job_id", "input_index", "init_strength", "motion_strength")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    NUM_IMAGES_FIELD_NUMBER: _ClassVar[int]
    AVATAR_ID_FIELD_NUMBER: _ClassVar[int]
    VOICE_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    MAX_VIDEO_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ASPECT_RATIO_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    INPUT_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_INDEX_FIELD_NUMBER: _ClassVar[int]
    INIT_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    MOTION_STRENGTH_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    num_images: int
    avatar_id: str
    voice_id: str
    max_tokens: int
    temperature: float
    system_prompt: str
    negative_prompt: str
    max_video_seconds: int
    aspect_ratio: str
    quality: str
    input_job_id: str
    input_index: int
    init_strength: float
    motion_strength: int
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., num_images: _Optional[int] = ..., avatar_id: _Optional[str] = ..., voice_id: _Optional[str] = ..., max_tokens: _Optional[int] = ..., temperature: _Optional[float] = ..., system_prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., max_video_seconds: _Optional[int] = ..., aspect_ratio: _Optional[str] = ..., quality: _Optional[str] = ..., input_job_id: _Optional[str] = ..., input_index: _Optional[int] = ..., init_strength: _Optional[float] = ..., motion_strength: _Optional[int] = ...) -> None: ...

class ChatTurn(_message.Message):
    __slots__ = ("role", "content")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    role: str
    content: str
    def __init__(self, role: _Optional[str] = ..., content: _Optional[str] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("id", "kinds", "display_name", "credits_per_million_tokens", "is_default", "premium")
    ID_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    CREDITS_PER_MILLION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    PREMIUM_FIELD_NUMBER: _ClassVar[int]
    id: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    display_name: str
    credits_per_million_tokens: int
    is_default: bool
    premium: bool
    def __init__(self, id: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., display_name: _Optional[str] = ..., credits_per_million_tokens: _Optional[int] = ..., is_default: _Optional[bool] = ..., premium: _Optional[bool] = ...) -> None: ...

class Avatar(_message.Message):
    __slots__ = ("id", "name", "preview_url")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_URL_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    preview_url: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., preview_url: _Optional[str] = ...) -> None: ...

class Voice(_message.Message):
    __slots__ = ("id", "name", "language")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    language: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., language: _Optional[str] = ...) -> None: ...

class Provider(_message.Message):
    __slots__ = ("name", "kinds", "models", "avatars", "voices", "circuit_state", "sandbox")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    AVATARS_FIELD_NUMBER: _ClassVar[int]
    VOICES_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_STATE_FIELD_NUMBER: _ClassVar[int]
    SANDBOX_FIELD_NUMBER: _ClassVar[int]
    name: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    avatars: _containers.RepeatedCompositeFieldContainer[Avatar]
    voices: _containers.RepeatedCompositeFieldContainer[Voice]
    circuit_state: str
    sandbox: bool
    def __init__(self, name: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., avatars: _Optional[_Iterable[_Union[Avatar, _Mapping]]] = ..., voices: _Optional[_Iterable[_Union[Voice, _Mapping]]] = ..., circuit_state: _Optional[str] = ..., sandbox: _Optional[bool] = ...) -> None: ...

class ModelAlias(_message.Message):
    __slots__ = ("name", "kinds", "models", "credits_per_million_tokens")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    CREDITS_PER_MILLION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    name: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedScalarFieldContainer[str]
    credits_per_million_tokens: int
    def __init__(self, name: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[str]] = ..., credits_per_million_tokens: _Optional[int] = ...) -> None: ...

class Price(_message.Message):
    __slots__ = ("kind", "model", "unit", "credits_per_unit", "minimum_credits")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    CREDITS_PER_UNIT_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_CREDITS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    model: str
    unit: str
    credits_per_unit: int
    minimum_credits: int
    def __init__(self, kind: _Optional[str] = ..., model: _Optional[str] = ..., unit: _Optional[str] = ..., credits_per_unit: _Optional[int] = ..., minimum_credits: _Optional[int] = ...) -> None: ...

class CreateJobRequest(_message.Message):
    __slots__ = ("kind", "prompt", "model", "provider", "options", "history", "idempotency_key")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    kind: str
    prompt: str
    model: str
    provider: str
    options: JobOptions
    history: _containers.RepeatedCompositeFieldContainer[ChatTurn]
    idempotency_key: str
    def __init__(self, kind: _Optional[str] = ..., prompt: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., options: _Optional[_Union[JobOptions, _Mapping]] = ..., history: _Optional[_Iterable[_Union[ChatTurn, _Mapping]]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CreateJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "status")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    status: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class EstimateJobRequest(_message.Message):
    __slots__ = ("kind", "prompt", "model", "provider", "options", "history")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    kind: str
    prompt: str
    model: str
    provider: str
    options: JobOptions
    history: _containers.RepeatedCompositeFieldContainer[ChatTurn]
    def __init__(self, kind: _Optional[str] = ..., prompt: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., options: _Optional[_Union[JobOptions, _Mapping]] = ..., history: _Optional[_Iterable[_Union[ChatTurn, _Mapping]]] = ...) -> None: ...

class StreamJobRequest(_message.Message):
    __slots__ = ("kind", "prompt", "model", "provider", "options", "history", "idempotency_key", "cancel_on_disconnect")
    KIND_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CANCEL_ON_DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    kind: str
    prompt: str
    model: str
    provider: str
    options: JobOptions
    history: _containers.RepeatedCompositeFieldContainer[ChatTurn]
    idempotency_key: str
    cancel_on_disconnect: bool
    def __init__(self, kind: _Optional[str] = ..., prompt: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., options: _Optional[_Union[JobOptions, _Mapping]] = ..., history: _Optional[_Iterable[_Union[ChatTurn, _Mapping]]] = ..., idempotency_key: _Optional[str] = ..., cancel_on_disconnect: _Optional[bool] = ...) -> None: ...

class StreamJobResponse(_message.Message):
    __slots__ = ("event_id", "snapshot", "delta", "job")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    snapshot: JobText
    delta: JobDelta
    job: Job
    def __init__(self, event_id: _Optional[str] = ..., snapshot: _Optional[_Union[JobText, _Mapping]] = ..., delta: _Optional[_Union[JobDelta, _Mapping]] = ..., job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class EstimateJobResponse(_message.Message):
    __slots__ = ("estimate_credits", "provider", "model")
    ESTIMATE_CREDITS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    estimate_credits: int
    provider: str
    model: str
    def __init__(self, estimate_credits: _Optional[int] = ..., provider: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class HeyGenWebhookRequest(_message.Message):
    __slots__ = ("body",)
    BODY_FIELD_NUMBER: _ClassVar[int]
    body: _httpbody_pb2.HttpBody
    def __init__(self, body: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class HeyGenWebhookResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LeonardoWebhookRequest(_message.Message):
    __slots__ = ("body",)
    BODY_FIELD_NUMBER: _ClassVar[int]
    body: _httpbody_pb2.HttpBody
    def __init__(self, body: _Optional[_Union[_httpbody_pb2.HttpBody, _Mapping]] = ...) -> None: ...

class LeonardoWebhookResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "last_event_id", "cancel_on_disconnect")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    CANCEL_ON_DISCONNECT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    last_event_id: str
    cancel_on_disconnect: bool
    def __init__(self, job_id: _Optional[str] = ..., last_event_id: _Optional[str] = ..., cancel_on_disconnect: _Optional[bool] = ...) -> None: ...

class WatchJobResponse(_message.Message):
    __slots__ = ("event_id", "snapshot", "delta", "job")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    snapshot: JobText
    delta: JobDelta
    job: Job
    def __init__(self, event_id: _Optional[str] = ..., snapshot: _Optional[_Union[JobText, _Mapping]] = ..., delta: _Optional[_Union[JobDelta, _Mapping]] = ..., job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class JobText(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class JobDelta(_message.Message):
    __slots__ = ("text", "offset", "tokens", "cost_credits")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_CREDITS_FIELD_NUMBER: _ClassVar[int]
    text: str
    offset: int
    tokens: int
    cost_credits: int
    def __init__(self, text: _Optional[str] = ..., offset: _Optional[int] = ..., tokens: _Optional[int] = ..., cost_credits: _Optional[int] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: Job
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ...) -> None: ...

class ListProvidersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProvidersResponse(_message.Message):
    __slots__ = ("providers", "aliases")
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[Provider]
    aliases: _containers.RepeatedCompositeFieldContainer[ModelAlias]
    def __init__(self, providers: _Optional[_Iterable[_Union[Provider, _Mapping]]] = ..., aliases: _Optional[_Iterable[_Union[ModelAlias, _Mapping]]] = ...) -> None: ...

class GetPricingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPricingResponse(_message.Message):
    __slots__ = ("prices",)
    PRICES_FIELD_NUMBER: _ClassVar[int]
    prices: _containers.RepeatedCompositeFieldContainer[Price]
    def __init__(self, prices: _Optional[_Iterable[_Union[Price, _Mapping]]] = ...) -> None: ...

class GetGenerationSummaryRequest(_message.Message):
    __slots__ = ("days",)
    DAYS_FIELD_NUMBER: _ClassVar[int]
    days: int
    def __init__(self, days: _Optional[int] = ...) -> None: ...

class JobCount(_message.Message):
    __slots__ = ("label", "jobs")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    label: str
    jobs: int
    def __init__(self, label: _Optional[str] = ..., jobs: _Optional[int] = ...) -> None: ...

class GenerationSummaryDay(_message.Message):
    __slots__ = ("date", "jobs", "by_status", "by_kind")
    DATE_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    BY_KIND_FIELD_NUMBER: _ClassVar[int]
    date: str
    jobs: int
    by_status: _containers.RepeatedCompositeFieldContainer[JobCount]
    by_kind: _containers.RepeatedCompositeFieldContainer[JobCount]
    def __init__(self, date: _Optional[str] = ..., jobs: _Optional[int] = ..., by_status: _Optional[_Iterable[_Union[JobCount, _Mapping]]] = ..., by_kind: _Optional[_Iterable[_Union[JobCount, _Mapping]]] = ...) -> None: ...

class ProviderHealth(_message.Message):
    __slots__ = ("provider", "circuit_state", "jobs", "failed", "error_rate")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CIRCUIT_STATE_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    provider: str
    circuit_state: str
    jobs: int
    failed: int
    error_rate: float
    def __init__(self, provider: _Optional[str] = ..., circuit_state: _Optional[str] = ..., jobs: _Optional[int] = ..., failed: _Optional[int] = ..., error_rate: _Optional[float] = ...) -> None: ...

class GetGenerationSummaryResponse(_message.Message):
    __slots__ = ("days", "providers")
    DAYS_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    days: _containers.RepeatedCompositeFieldContainer[GenerationSummaryDay]
    providers: _containers.RepeatedCompositeFieldContainer[ProviderHealth]
    def __init__(self, days: _Optional[_Iterable[_Union[GenerationSummaryDay, _Mapping]]] = ..., providers: _Optional[_Iterable[_Union[ProviderHealth, _Mapping]]] = ...) -> None: ...
