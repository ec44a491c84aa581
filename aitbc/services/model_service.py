"""ModelService: what the connected miners serve, in the OpenAI list shape."""

from __future__ import annotations

from aitbc.coordinator.engine import Coordinator
from aitbc.services.interceptors import Context, current_principal
from aitbc.v1 import models_pb2, models_pb2_grpc

OWNER = "aitbc"


class ModelService(models_pb2_grpc.ModelServiceServicer):
    def __init__(self, coordinator: Coordinator) -> None:
        self._coordinator = coordinator

    async def ListModels(
        self, request: models_pb2.ListModelsRequest, context: Context
    ) -> models_pb2.ListModelsResponse:
        offers = self._coordinator.models(current_principal())
        return models_pb2.ListModelsResponse(
            object="list",
            data=[
                models_pb2.Model(
                    id=offer.model,
                    object="model",
                    created=int(offer.since.timestamp()),
                    owned_by=OWNER,
                    miners=offer.miners,
                    free_slots=offer.free_slots,
                )
                for offer in offers
            ],
        )
