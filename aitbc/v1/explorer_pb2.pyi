from aitbc.v1 import blocks_pb2 as _blocks_pb2
from aitbc.v1 import options_pb2 as _options_pb2
from aitbc.v1 import receipts_pb2 as _receipts_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Posting(_message.Message):
    __slots__ = ("account", "bucket", "amount")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    bucket: str
    amount: int
    def __init__(self, account: _Optional[str] = ..., bucket: _Optional[str] = ..., amount: _Optional[int] = ...) -> None: ...

class LedgerTransaction(_message.Message):
    __slots__ = ("tx_id", "kind", "job_id", "postings", "tx_hash")
    TX_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    POSTINGS_FIELD_NUMBER: _ClassVar[int]
    TX_HASH_FIELD_NUMBER: _ClassVar[int]
    tx_id: str
    kind: str
    job_id: str
    postings: _containers.RepeatedCompositeFieldContainer[Posting]
    tx_hash: str
    def __init__(self, tx_id: _Optional[str] = ..., kind: _Optional[str] = ..., job_id: _Optional[str] = ..., postings: _Optional[_Iterable[_Union[Posting, _Mapping]]] = ..., tx_hash: _Optional[str] = ...) -> None: ...

class ListBlocksRequest(_message.Message):
    __slots__ = ("limit", "page_token")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    limit: int
    page_token: str
    def __init__(self, limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBlocksResponse(_message.Message):
    __slots__ = ("blocks", "next_page_token")
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    blocks: _containers.RepeatedCompositeFieldContainer[_blocks_pb2.BlockHeader]
    next_page_token: str
    def __init__(self, blocks: _Optional[_Iterable[_Union[_blocks_pb2.BlockHeader, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetBlockRequest(_message.Message):
    __slots__ = ("height",)
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    height: int
    def __init__(self, height: _Optional[int] = ...) -> None: ...

class GetBlockResponse(_message.Message):
    __slots__ = ("header", "transactions", "receipts")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    header: _blocks_pb2.BlockHeader
    transactions: _containers.RepeatedCompositeFieldContainer[LedgerTransaction]
    receipts: _containers.RepeatedCompositeFieldContainer[_receipts_pb2.Receipt]
    def __init__(self, header: _Optional[_Union[_blocks_pb2.BlockHeader, _Mapping]] = ..., transactions: _Optional[_Iterable[_Union[LedgerTransaction, _Mapping]]] = ..., receipts: _Optional[_Iterable[_Union[_receipts_pb2.Receipt, _Mapping]]] = ...) -> None: ...

class ListTransactionsRequest(_message.Message):
    __slots__ = ("limit", "page_token")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    limit: int
    page_token: str
    def __init__(self, limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTransactionsResponse(_message.Message):
    __slots__ = ("transactions", "next_page_token")
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedCompositeFieldContainer[LedgerTransaction]
    next_page_token: str
    def __init__(self, transactions: _Optional[_Iterable[_Union[LedgerTransaction, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListRecentReceiptsRequest(_message.Message):
    __slots__ = ("limit", "page_token")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    limit: int
    page_token: str
    def __init__(self, limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRecentReceiptsResponse(_message.Message):
    __slots__ = ("receipts", "next_page_token")
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    receipts: _containers.RepeatedCompositeFieldContainer[_receipts_pb2.Receipt]
    next_page_token: str
    def __init__(self, receipts: _Optional[_Iterable[_Union[_receipts_pb2.Receipt, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("height", "transactions", "receipts", "minted", "held", "charged", "fees", "jobs_submitted", "jobs_completed", "tokens_served", "miners_online", "models_served", "last_minute", "last_hour")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    MINTED_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    CHARGED_FIELD_NUMBER: _ClassVar[int]
    FEES_FIELD_NUMBER: _ClassVar[int]
    JOBS_SUBMITTED_FIELD_NUMBER: _ClassVar[int]
    JOBS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TOKENS_SERVED_FIELD_NUMBER: _ClassVar[int]
    MINERS_ONLINE_FIELD_NUMBER: _ClassVar[int]
    MODELS_SERVED_FIELD_NUMBER: _ClassVar[int]
    LAST_MINUTE_FIELD_NUMBER: _ClassVar[int]
    LAST_HOUR_FIELD_NUMBER: _ClassVar[int]
    height: int
    transactions: int
    receipts: int
    minted: int
    held: int
    charged: int
    fees: int
    jobs_submitted: int
    jobs_completed: int
    tokens_served: int
    miners_online: int
    models_served: _containers.RepeatedScalarFieldContainer[str]
    last_minute: Throughput
    last_hour: Throughput
    def __init__(self, height: _Optional[int] = ..., transactions: _Optional[int] = ..., receipts: _Optional[int] = ..., minted: _Optional[int] = ..., held: _Optional[int] = ..., charged: _Optional[int] = ..., fees: _Optional[int] = ..., jobs_submitted: _Optional[int] = ..., jobs_completed: _Optional[int] = ..., tokens_served: _Optional[int] = ..., miners_online: _Optional[int] = ..., models_served: _Optional[_Iterable[str]] = ..., last_minute: _Optional[_Union[Throughput, _Mapping]] = ..., last_hour: _Optional[_Union[Throughput, _Mapping]] = ...) -> None: ...

class Throughput(_message.Message):
    __slots__ = ("jobs_completed", "tokens", "tokens_per_second")
    JOBS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    jobs_completed: int
    tokens: int
    tokens_per_second: float
    def __init__(self, jobs_completed: _Optional[int] = ..., tokens: _Optional[int] = ..., tokens_per_second: _Optional[float] = ...) -> None: ...
