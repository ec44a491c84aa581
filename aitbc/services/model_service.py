"""ModelService: what the connected miners serve, in the OpenAI list shape."""

from __future__ import annotations

from aitbc.coordinator.engine import Coordinator
from aitbc.coordinator.miners import ModelOffer
from aitbc.domain.catalog import ModelEntry
from aitbc.services.interceptors import Context
from aitbc.v1 import models_pb2, models_pb2_grpc

OWNER = "aitbc"


class ModelService(models_pb2_grpc.ModelServiceServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    async def ListModels(
        self, request: models_pb2.ListModelsRequest, context: Context
    ) -> models_pb2.ListModelsResponse:
        default = self._coordinator.default_model
        return models_pb2.ListModelsResponse(
            object="list",
            data=[
                _model(entry, offer, is_default=entry.is_named(default))
                for entry, offer in self._coordinator.network.models()
            ],
        )


def _model(entry: ModelEntry, offer: ModelOffer | None, *, is_default: bool) -> models_pb2.Model:
    return models_pb2.Model(
        id=entry.id,
        object="model",
        created=int(offer.since.timestamp()) if offer else 0,
        owned_by=OWNER,
        miners=offer.miners if offer else 0,
        free_slots=offer.free_slots if offer else 0,
        aliases=entry.aliases,
        kind=entry.kind.value,
        min_tier=entry.min_tier,
        min_vram_bytes=entry.min_vram_bytes,
        context_length=entry.context_length,
        price_input_per_1k=entry.price_input_per_1k,
        price_output_per_1k=entry.price_output_per_1k,
        description=entry.description,
        is_default=is_default,
    )
