import datetime

from aitbc.v1 import miner_pb2 as _miner_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListMinersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MinerReputation(_message.Message):
    __slots__ = ("score", "completions", "failures", "cancellations", "lease_expiries", "tokens_per_second", "time_to_first_token_seconds")
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COMPLETIONS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    CANCELLATIONS_FIELD_NUMBER: _ClassVar[int]
    LEASE_EXPIRIES_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_FIRST_TOKEN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    score: int
    completions: float
    failures: float
    cancellations: float
    lease_expiries: float
    tokens_per_second: float
    time_to_first_token_seconds: float
    def __init__(self, score: _Optional[int] = ..., completions: _Optional[float] = ..., failures: _Optional[float] = ..., cancellations: _Optional[float] = ..., lease_expiries: _Optional[float] = ..., tokens_per_second: _Optional[float] = ..., time_to_first_token_seconds: _Optional[float] = ...) -> None: ...

class MinerSummary(_message.Message):
    __slots__ = ("miner_id", "online", "connection", "models", "gpus", "tier", "max_concurrency", "free_slots", "draining", "backend", "reputation", "last_seen")
    MINER_ID_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    CONNECTION_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    FREE_SLOTS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    REPUTATION_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    miner_id: str
    online: bool
    connection: str
    models: _containers.RepeatedScalarFieldContainer[str]
    gpus: _containers.RepeatedCompositeFieldContainer[_miner_pb2.GpuInfo]
    tier: int
    max_concurrency: int
    free_slots: int
    draining: bool
    backend: str
    reputation: MinerReputation
    last_seen: _timestamp_pb2.Timestamp
    def __init__(self, miner_id: _Optional[str] = ..., online: _Optional[bool] = ..., connection: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., gpus: _Optional[_Iterable[_Union[_miner_pb2.GpuInfo, _Mapping]]] = ..., tier: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., free_slots: _Optional[int] = ..., draining: _Optional[bool] = ..., backend: _Optional[str] = ..., reputation: _Optional[_Union[MinerReputation, _Mapping]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListMinersResponse(_message.Message):
    __slots__ = ("miners",)
    MINERS_FIELD_NUMBER: _ClassVar[int]
    miners: _containers.RepeatedCompositeFieldContainer[MinerSummary]
    def __init__(self, miners: _Optional[_Iterable[_Union[MinerSummary, _Mapping]]] = ...) -> None: ...
