from aitbc.v1 import blocks_pb2 as _blocks_pb2
from aitbc.v1 import options_pb2 as _options_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Receipt(_message.Message):
    __slots__ = ("type", "receipt_id", "job_id", "attempt", "outcome", "client", "miner", "model", "prompt_tokens", "completion_tokens", "price_input_per_1k", "price_output_per_1k", "fee_bps", "charged", "miner_earnings", "fee", "input_hash", "output_hash", "started_at", "completed_at", "miner_public_key", "miner_signature", "miner_signed", "coordinator_signature")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    MINER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PRICE_INPUT_PER_1K_FIELD_NUMBER: _ClassVar[int]
    PRICE_OUTPUT_PER_1K_FIELD_NUMBER: _ClassVar[int]
    FEE_BPS_FIELD_NUMBER: _ClassVar[int]
    CHARGED_FIELD_NUMBER: _ClassVar[int]
    MINER_EARNINGS_FIELD_NUMBER: _ClassVar[int]
    FEE_FIELD_NUMBER: _ClassVar[int]
    INPUT_HASH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_HASH_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    MINER_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    MINER_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    MINER_SIGNED_FIELD_NUMBER: _ClassVar[int]
    COORDINATOR_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    type: str
    receipt_id: str
    job_id: str
    attempt: int
    outcome: str
    client: str
    miner: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    price_input_per_1k: int
    price_output_per_1k: int
    fee_bps: int
    charged: int
    miner_earnings: int
    fee: int
    input_hash: str
    output_hash: str
    started_at: str
    completed_at: str
    miner_public_key: str
    miner_signature: str
    miner_signed: bool
    coordinator_signature: str
    def __init__(self, type: _Optional[str] = ..., receipt_id: _Optional[str] = ..., job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., outcome: _Optional[str] = ..., client: _Optional[str] = ..., miner: _Optional[str] = ..., model: _Optional[str] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., price_input_per_1k: _Optional[int] = ..., price_output_per_1k: _Optional[int] = ..., fee_bps: _Optional[int] = ..., charged: _Optional[int] = ..., miner_earnings: _Optional[int] = ..., fee: _Optional[int] = ..., input_hash: _Optional[str] = ..., output_hash: _Optional[str] = ..., started_at: _Optional[str] = ..., completed_at: _Optional[str] = ..., miner_public_key: _Optional[str] = ..., miner_signature: _Optional[str] = ..., miner_signed: _Optional[bool] = ..., coordinator_signature: _Optional[str] = ...) -> None: ...

class GetReceiptRequest(_message.Message):
    __slots__ = ("receipt_id",)
    RECEIPT_ID_FIELD_NUMBER: _ClassVar[int]
    receipt_id: str
    def __init__(self, receipt_id: _Optional[str] = ...) -> None: ...

class GetReceiptResponse(_message.Message):
    __slots__ = ("receipt", "coordinator_public_key", "proof")
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    COORDINATOR_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    receipt: Receipt
    coordinator_public_key: str
    proof: _blocks_pb2.ReceiptProof
    def __init__(self, receipt: _Optional[_Union[Receipt, _Mapping]] = ..., coordinator_public_key: _Optional[str] = ..., proof: _Optional[_Union[_blocks_pb2.ReceiptProof, _Mapping]] = ...) -> None: ...

class ListReceiptsRequest(_message.Message):
    __slots__ = ("client", "limit")
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    client: str
    limit: int
    def __init__(self, client: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListReceiptsResponse(_message.Message):
    __slots__ = ("receipts",)
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    receipts: _containers.RepeatedCompositeFieldContainer[Receipt]
    def __init__(self, receipts: _Optional[_Iterable[_Union[Receipt, _Mapping]]] = ...) -> None: ...
