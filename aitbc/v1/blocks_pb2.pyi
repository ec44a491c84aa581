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

class InclusionProof(_message.Message):
    __slots__ = ("leaf_index", "tree_size", "path")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    path: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., path: _Optional[_Iterable[str]] = ...) -> None: ...

class ReceiptProof(_message.Message):
    __slots__ = ("block", "proof")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    block: BlockHeader
    proof: InclusionProof
    def __init__(self, block: _Optional[_Union[BlockHeader, _Mapping]] = ..., proof: _Optional[_Union[InclusionProof, _Mapping]] = ...) -> None: ...
