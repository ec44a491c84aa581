"""AccountService: an account's balance, and admin credits."""

from __future__ import annotations

from aitbc.coordinator.engine import Coordinator
from aitbc.services.interceptors import Context, current_principal
from aitbc.store.base import AccountRecord
from aitbc.v1 import accounts_pb2, accounts_pb2_grpc


def account_to_proto(record: AccountRecord) -> accounts_pb2.Account:
    return accounts_pb2.Account(
        account=record.account_id,
        address=record.address,
        balance=record.balance,
        available=record.available,
        held=record.held,
        spent=record.spent,
        earned=record.earned,
    )


class AccountService(accounts_pb2_grpc.AccountServiceServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    async def GetAccount(
        self, request: accounts_pb2.GetAccountRequest, context: Context
    ) -> accounts_pb2.GetAccountResponse:
        record = await self._coordinator.account(current_principal(), request.account)
        return accounts_pb2.GetAccountResponse(account=account_to_proto(record))

    async def CreditAccount(
        self, request: accounts_pb2.CreditAccountRequest, context: Context
    ) -> accounts_pb2.CreditAccountResponse:
        principal = current_principal()
        record = await self._coordinator.credit(principal, request.account, request.amount, request.credit_id)
        return accounts_pb2.CreditAccountResponse(account=account_to_proto(record))
