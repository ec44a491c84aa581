from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Model(_message.Message):
    __slots__ = ("id", "object", "created", "owned_by", "miners", "free_slots", "aliases", "kind", "min_tier", "min_vram_bytes", "context_length", "description", "is_default", "price_input_per_1k", "price_output_per_1k")
    ID_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    OWNED_BY_FIELD_NUMBER: _ClassVar[int]
    MINERS_FIELD_NUMBER: _ClassVar[int]
    FREE_SLOTS_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MIN_TIER_FIELD_NUMBER: _ClassVar[int]
    MIN_VRAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LENGTH_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    PRICE_INPUT_PER_1K_FIELD_NUMBER: _ClassVar[int]
    PRICE_OUTPUT_PER_1K_FIELD_NUMBER: _ClassVar[int]
    id: str
    object: str
    created: int
    owned_by: str
    miners: int
    free_slots: int
    aliases: _containers.RepeatedScalarFieldContainer[str]
    kind: str
    min_tier: int
    min_vram_bytes: int
    context_length: int
    description: str
    is_default: bool
    price_input_per_1k: int
    price_output_per_1k: int
    def __init__(self, id: _Optional[str] = ..., object: _Optional[str] = ..., created: _Optional[int] = ..., owned_by: _Optional[str] = ..., miners: _Optional[int] = ..., free_slots: _Optional[int] = ..., aliases: _Optional[_Iterable[str]] = ..., kind: _Optional[str] = ..., min_tier: _Optional[int] = ..., min_vram_bytes: _Optional[int] = ..., context_length: _Optional[int] = ..., description: _Optional[str] = ..., is_default: _Optional[bool] = ..., price_input_per_1k: _Optional[int] = ..., price_output_per_1k: _Optional[int] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("object", "data")
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    object: str
    data: _containers.RepeatedCompositeFieldContainer[Model]
    def __init__(self, object: _Optional[str] = ..., data: _Optional[_Iterable[_Union[Model, _Mapping]]] = ...) -> None: ...
