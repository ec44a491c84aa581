import datetime

from aitbc.v1 import jobs_pb2 as _jobs_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConnectRequest(_message.Message):
    __slots__ = ("hello", "heartbeat", "started", "tokens", "done", "failed", "cancel_ack")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    CANCEL_ACK_FIELD_NUMBER: _ClassVar[int]
    hello: MinerHello
    heartbeat: Heartbeat
    started: JobStarted
    tokens: JobTokens
    done: JobDone
    failed: JobFailed
    cancel_ack: CancelAck
    def __init__(self, hello: _Optional[_Union[MinerHello, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., started: _Optional[_Union[JobStarted, _Mapping]] = ..., tokens: _Optional[_Union[JobTokens, _Mapping]] = ..., done: _Optional[_Union[JobDone, _Mapping]] = ..., failed: _Optional[_Union[JobFailed, _Mapping]] = ..., cancel_ack: _Optional[_Union[CancelAck, _Mapping]] = ...) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("welcome", "assign", "cancel", "drain")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    ASSIGN_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    assign: AssignJob
    cancel: CancelAssignment
    drain: Drain
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., assign: _Optional[_Union[AssignJob, _Mapping]] = ..., cancel: _Optional[_Union[CancelAssignment, _Mapping]] = ..., drain: _Optional[_Union[Drain, _Mapping]] = ...) -> None: ...

class GpuInfo(_message.Message):
    __slots__ = ("name", "vram_bytes", "count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    vram_bytes: int
    count: int
    def __init__(self, name: _Optional[str] = ..., vram_bytes: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class MinerHello(_message.Message):
    __slots__ = ("miner_id", "models", "gpus", "max_concurrency", "backend", "version", "prices", "public_key", "payout_address")
    MINER_ID_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PRICES_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    PAYOUT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    miner_id: str
    models: _containers.RepeatedScalarFieldContainer[str]
    gpus: _containers.RepeatedCompositeFieldContainer[GpuInfo]
    max_concurrency: int
    backend: str
    version: str
    prices: _containers.RepeatedCompositeFieldContainer[ModelPrice]
    public_key: bytes
    payout_address: str
    def __init__(self, miner_id: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., gpus: _Optional[_Iterable[_Union[GpuInfo, _Mapping]]] = ..., max_concurrency: _Optional[int] = ..., backend: _Optional[str] = ..., version: _Optional[str] = ..., prices: _Optional[_Iterable[_Union[ModelPrice, _Mapping]]] = ..., public_key: _Optional[bytes] = ..., payout_address: _Optional[str] = ...) -> None: ...

class ModelPrice(_message.Message):
    __slots__ = ("model", "input_per_1k", "output_per_1k")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_PER_1K_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PER_1K_FIELD_NUMBER: _ClassVar[int]
    model: str
    input_per_1k: int
    output_per_1k: int
    def __init__(self, model: _Optional[str] = ..., input_per_1k: _Optional[int] = ..., output_per_1k: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("draining",)
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    draining: bool
    def __init__(self, draining: _Optional[bool] = ...) -> None: ...

class JobStarted(_message.Message):
    __slots__ = ("job_id", "attempt", "prompt_tokens")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    prompt_tokens: int
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., prompt_tokens: _Optional[int] = ...) -> None: ...

class JobTokens(_message.Message):
    __slots__ = ("job_id", "attempt", "text", "token_count")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TOKEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    text: str
    token_count: int
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., text: _Optional[str] = ..., token_count: _Optional[int] = ...) -> None: ...

class JobDone(_message.Message):
    __slots__ = ("job_id", "attempt", "output", "prompt_tokens", "completion_tokens", "finish_reason", "signature")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    output: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    signature: str
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., output: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., finish_reason: _Optional[str] = ..., signature: _Optional[str] = ...) -> None: ...

class JobFailed(_message.Message):
    __slots__ = ("job_id", "attempt", "error", "retryable")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    error: str
    retryable: bool
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., error: _Optional[str] = ..., retryable: _Optional[bool] = ...) -> None: ...

class CancelAck(_message.Message):
    __slots__ = ("job_id", "attempt", "completion_tokens")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    completion_tokens: int
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., completion_tokens: _Optional[int] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("miner_id", "heartbeat_interval")
    MINER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    miner_id: str
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, miner_id: _Optional[str] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class AssignJob(_message.Message):
    __slots__ = ("job_id", "attempt", "prompt", "model", "params", "resume_text", "resume_tokens", "messages", "raw")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    RESUME_TEXT_FIELD_NUMBER: _ClassVar[int]
    RESUME_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    prompt: str
    model: str
    params: _jobs_pb2.SamplingParams
    resume_text: str
    resume_tokens: int
    messages: _containers.RepeatedCompositeFieldContainer[_jobs_pb2.ChatMessage]
    raw: bool
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., prompt: _Optional[str] = ..., model: _Optional[str] = ..., params: _Optional[_Union[_jobs_pb2.SamplingParams, _Mapping]] = ..., resume_text: _Optional[str] = ..., resume_tokens: _Optional[int] = ..., messages: _Optional[_Iterable[_Union[_jobs_pb2.ChatMessage, _Mapping]]] = ..., raw: _Optional[bool] = ...) -> None: ...

class CancelAssignment(_message.Message):
    __slots__ = ("job_id", "attempt")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class Drain(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class GpuSummary(_message.Message):
    __slots__ = ("name", "memory")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    name: str
    memory: str
    def __init__(self, name: _Optional[str] = ..., memory: _Optional[str] = ...) -> None: ...

class RegisterMinerRequest(_message.Message):
    __slots__ = ("miner_id", "capabilities", "gpu_info", "max_concurrency", "prices", "public_key", "payout_address")
    MINER_ID_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    GPU_INFO_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    PRICES_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    PAYOUT_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    miner_id: str
    capabilities: _containers.RepeatedScalarFieldContainer[str]
    gpu_info: GpuSummary
    max_concurrency: int
    prices: _containers.RepeatedCompositeFieldContainer[ModelPrice]
    public_key: bytes
    payout_address: str
    def __init__(self, miner_id: _Optional[str] = ..., capabilities: _Optional[_Iterable[str]] = ..., gpu_info: _Optional[_Union[GpuSummary, _Mapping]] = ..., max_concurrency: _Optional[int] = ..., prices: _Optional[_Iterable[_Union[ModelPrice, _Mapping]]] = ..., public_key: _Optional[bytes] = ..., payout_address: _Optional[str] = ...) -> None: ...

class RegisterMinerResponse(_message.Message):
    __slots__ = ("miner_id", "heartbeat_interval")
    MINER_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    miner_id: str
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, miner_id: _Optional[str] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class MinerHeartbeatRequest(_message.Message):
    __slots__ = ("miner_id",)
    MINER_ID_FIELD_NUMBER: _ClassVar[int]
    miner_id: str
    def __init__(self, miner_id: _Optional[str] = ...) -> None: ...

class MinerHeartbeatResponse(_message.Message):
    __slots__ = ("job_ids",)
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ListAvailableJobsRequest(_message.Message):
    __slots__ = ("miner_id", "limit")
    MINER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    miner_id: str
    limit: int
    def __init__(self, miner_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class AvailableJob(_message.Message):
    __slots__ = ("job_id", "model", "prompt", "messages", "raw", "params", "created_at")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    model: str
    prompt: str
    messages: _containers.RepeatedCompositeFieldContainer[_jobs_pb2.ChatMessage]
    raw: bool
    params: _jobs_pb2.SamplingParams
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., model: _Optional[str] = ..., prompt: _Optional[str] = ..., messages: _Optional[_Iterable[_Union[_jobs_pb2.ChatMessage, _Mapping]]] = ..., raw: _Optional[bool] = ..., params: _Optional[_Union[_jobs_pb2.SamplingParams, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListAvailableJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[AvailableJob]
    def __init__(self, jobs: _Optional[_Iterable[_Union[AvailableJob, _Mapping]]] = ...) -> None: ...

class ClaimJobRequest(_message.Message):
    __slots__ = ("job_id", "miner_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MINER_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    miner_id: str
    def __init__(self, job_id: _Optional[str] = ..., miner_id: _Optional[str] = ...) -> None: ...

class ClaimJobResponse(_message.Message):
    __slots__ = ("assignment",)
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    assignment: AssignJob
    def __init__(self, assignment: _Optional[_Union[AssignJob, _Mapping]] = ...) -> None: ...

class CompleteJobRequest(_message.Message):
    __slots__ = ("job_id", "miner_id", "attempt", "result", "completed_at", "prompt_tokens", "completion_tokens", "finish_reason", "signature")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MINER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    FINISH_REASON_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    miner_id: str
    attempt: int
    result: str
    completed_at: _timestamp_pb2.Timestamp
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    signature: str
    def __init__(self, job_id: _Optional[str] = ..., miner_id: _Optional[str] = ..., attempt: _Optional[int] = ..., result: _Optional[str] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., finish_reason: _Optional[str] = ..., signature: _Optional[str] = ...) -> None: ...

class CompleteJobResponse(_message.Message):
    __slots__ = ("job_id", "status")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: _jobs_pb2.JobState
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[_Union[_jobs_pb2.JobState, str]] = ...) -> None: ...

class FailJobRequest(_message.Message):
    __slots__ = ("job_id", "miner_id", "attempt", "error", "retryable")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    MINER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    miner_id: str
    attempt: int
    error: str
    retryable: bool
    def __init__(self, job_id: _Optional[str] = ..., miner_id: _Optional[str] = ..., attempt: _Optional[int] = ..., error: _Optional[str] = ..., retryable: _Optional[bool] = ...) -> None: ...

class FailJobResponse(_message.Message):
    __slots__ = ("job_id", "status")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: _jobs_pb2.JobState
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[_Union[_jobs_pb2.JobState, str]] = ...) -> None: ...
