from google.api import annotations_pb2 as _annotations_pb2
from google.api import field_behavior_pb2 as _field_behavior_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AccountPlan(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCOUNT_PLAN_UNSPECIFIED: _ClassVar[AccountPlan]
    ACCOUNT_PLAN_FREE: _ClassVar[AccountPlan]
    ACCOUNT_PLAN_PRO: _ClassVar[AccountPlan]
    ACCOUNT_PLAN_ENTERPRISE: _ClassVar[AccountPlan]
ACCOUNT_PLAN_UNSPECIFIED: AccountPlan
ACCOUNT_PLAN_FREE: AccountPlan
ACCOUNT_PLAN_PRO: AccountPlan
ACCOUNT_PLAN_ENTERPRISE: AccountPlan

class SetAccountPlanRequest(_message.Message):
    __slots__ = ("account", "plan")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    account: str
    plan: AccountPlan
    def __init__(self, account: _Optional[str] = ..., plan: _Optional[_Union[AccountPlan, str]] = ...) -> None: ...

class SetAccountPlanResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: Account
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    def __init__(self, account: _Optional[str] = ...) -> None: ...

class GetAccountResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: Account
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...

class CreditAccountRequest(_message.Message):
    __slots__ = ("account", "amount", "credit_id")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    CREDIT_ID_FIELD_NUMBER: _ClassVar[int]
    account: str
    amount: int
    credit_id: str
    def __init__(self, account: _Optional[str] = ..., amount: _Optional[int] = ..., credit_id: _Optional[str] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("account", "address", "balance", "available", "held", "spent", "earned", "plan")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    SPENT_FIELD_NUMBER: _ClassVar[int]
    EARNED_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    account: str
    address: str
    balance: int
    available: int
    held: int
    spent: int
    earned: int
    plan: AccountPlan
    def __init__(self, account: _Optional[str] = ..., address: _Optional[str] = ..., balance: _Optional[int] = ..., available: _Optional[int] = ..., held: _Optional[int] = ..., spent: _Optional[int] = ..., earned: _Optional[int] = ..., plan: _Optional[_Union[AccountPlan, str]] = ...) -> None: ...

class CreditAccountResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: Account
    def __init__(self, account: _Optional[_Union[Account, _Mapping]] = ...) -> None: ...
