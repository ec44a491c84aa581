"""AccountService: an account's balance, and admin credits."""

from __future__ import annotations

from aitbc.coordinator.engine import Coordinator
from aitbc.domain.errors import invalid_argument
from aitbc.domain.retention import Plan
from aitbc.services.interceptors import Context, current_principal
from aitbc.store.base import AccountRecord
from aitbc.v1 import accounts_pb2, accounts_pb2_grpc

PLAN_TO_PROTO: dict[Plan, accounts_pb2.AccountPlan] = {
    Plan.FREE: accounts_pb2.ACCOUNT_PLAN_FREE,
    Plan.PRO: accounts_pb2.ACCOUNT_PLAN_PRO,
    Plan.ENTERPRISE: accounts_pb2.ACCOUNT_PLAN_ENTERPRISE,
}
PLAN_FROM_PROTO = {value: plan for plan, value in PLAN_TO_PROTO.items()}


def account_to_proto(record: AccountRecord, plan: Plan = Plan.FREE) -> accounts_pb2.Account:
    return accounts_pb2.Account(
        plan=PLAN_TO_PROTO[plan],
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
        plan = self._coordinator.retention.plan_of(record.account_id)
        return accounts_pb2.GetAccountResponse(account=account_to_proto(record, plan))

    async def CreditAccount(
        self, request: accounts_pb2.CreditAccountRequest, context: Context
    ) -> accounts_pb2.CreditAccountResponse:
        principal = current_principal()
        record = await self._coordinator.credit(principal, request.account, request.amount, request.credit_id)
        plan = self._coordinator.retention.plan_of(record.account_id)
        return accounts_pb2.CreditAccountResponse(account=account_to_proto(record, plan))

    async def SetAccountPlan(
        self, request: accounts_pb2.SetAccountPlanRequest, context: Context
    ) -> accounts_pb2.SetAccountPlanResponse:
        plan = PLAN_FROM_PROTO.get(request.plan)
        if plan is None:
            raise invalid_argument("plan", "must be free, pro or enterprise")
        principal = current_principal()
        await self._coordinator.retention.set_plan(principal, request.account, plan)
        record = await self._coordinator.account(principal, request.account)
        return accounts_pb2.SetAccountPlanResponse(account=account_to_proto(record, plan))
