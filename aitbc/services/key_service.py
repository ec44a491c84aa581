"""KeyService: listing and revoking API keys, translated onto the authenticator."""

from __future__ import annotations

from aitbc.coordinator.auth import Authenticator
from aitbc.domain.errors import invalid_argument
from aitbc.services.convert import timestamp
from aitbc.services.interceptors import Context, current_principal
from aitbc.store.base import ApiKeyRecord
from aitbc.v1 import keys_pb2, keys_pb2_grpc


class KeyService(keys_pb2_grpc.KeyServiceServicer):
    def __init__(self, authenticator: Authenticator) -> None:
        self._auth = authenticator

    async def ListApiKeys(self, request: keys_pb2.ListApiKeysRequest, context: Context) -> keys_pb2.ListApiKeysResponse:
        records = await self._auth.list_keys(current_principal())
        return keys_pb2.ListApiKeysResponse(keys=[_key(record) for record in records])

    async def RevokeApiKey(
        self, request: keys_pb2.RevokeApiKeyRequest, context: Context
    ) -> keys_pb2.RevokeApiKeyResponse:
        if not request.key_id:
            raise invalid_argument("key_id", "is required")
        record = await self._auth.revoke(current_principal(), request.key_id)
        return keys_pb2.RevokeApiKeyResponse(key=_key(record))


def _key(record: ApiKeyRecord) -> keys_pb2.ApiKey:
    return keys_pb2.ApiKey(
        key_id=record.key_id,
        role=record.role.value,
        owner_id=record.owner_id,
        created_at=timestamp(record.created_at),
        last_used_at=timestamp(record.last_used_at),
        revoked_at=timestamp(record.revoked_at),
    )
