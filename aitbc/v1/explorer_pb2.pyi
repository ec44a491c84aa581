from aitbc.v1 import receipts_pb2 as _receipts_pb2
from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BlockHeader(_message.Message):
    __slots__ = ("height", "block_hash", "previous_hash", "time", "tx_root", "tx_count", "receipts_root", "receipt_count", "coordinator_signature")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BLOCK_HASH_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    TX_ROOT_FIELD_NUMBER: _ClassVar[int]
    TX_COUNT_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_ROOT_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_COUNT_FIELD_NUMBER: _ClassVar[int]
    COORDINATOR_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    height: int
    block_hash: str
    previous_hash: str
    time: str
    tx_root: str
    tx_count: int
    receipts_root: str
    receipt_count: int
    coordinator_signature: str
    def __init__(self, height: _Optional[int] = ..., block_hash: _Optional[str] = ..., previous_hash: _Optional[str] = ..., time: _Optional[str] = ..., tx_root: _Optional[str] = ..., tx_count: _Optional[int] = ..., receipts_root: _Optional[str] = ..., receipt_count: _Optional[int] = ..., coordinator_signature: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListBlocksResponse(_message.Message):
    __slots__ = ("blocks",)
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    blocks: _containers.RepeatedCompositeFieldContainer[BlockHeader]
    def __init__(self, blocks: _Optional[_Iterable[_Union[BlockHeader, _Mapping]]] = ...) -> None: ...

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
    header: BlockHeader
    transactions: _containers.RepeatedCompositeFieldContainer[LedgerTransaction]
    receipts: _containers.RepeatedCompositeFieldContainer[_receipts_pb2.Receipt]
    def __init__(self, header: _Optional[_Union[BlockHeader, _Mapping]] = ..., transactions: _Optional[_Iterable[_Union[LedgerTransaction, _Mapping]]] = ..., receipts: _Optional[_Iterable[_Union[_receipts_pb2.Receipt, _Mapping]]] = ...) -> None: ...

class ListTransactionsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListTransactionsResponse(_message.Message):
    __slots__ = ("transactions",)
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    transactions: _containers.RepeatedCompositeFieldContainer[LedgerTransaction]
    def __init__(self, transactions: _Optional[_Iterable[_Union[LedgerTransaction, _Mapping]]] = ...) -> None: ...

class ListRecentReceiptsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListRecentReceiptsResponse(_message.Message):
    __slots__ = ("receipts",)
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    receipts: _containers.RepeatedCompositeFieldContainer[_receipts_pb2.Receipt]
    def __init__(self, receipts: _Optional[_Iterable[_Union[_receipts_pb2.Receipt, _Mapping]]] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("height", "transactions", "receipts", "minted", "held", "charged", "fees")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TRANSACTIONS_FIELD_NUMBER: _ClassVar[int]
    RECEIPTS_FIELD_NUMBER: _ClassVar[int]
    MINTED_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    CHARGED_FIELD_NUMBER: _ClassVar[int]
    FEES_FIELD_NUMBER: _ClassVar[int]
    height: int
    transactions: int
    receipts: int
    minted: int
    held: int
    charged: int
    fees: int
    def __init__(self, height: _Optional[int] = ..., transactions: _Optional[int] = ..., receipts: _Optional[int] = ..., minted: _Optional[int] = ..., held: _Optional[int] = ..., charged: _Optional[int] = ..., fees: _Optional[int] = ...) -> None: ...
