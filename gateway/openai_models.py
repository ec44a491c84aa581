"""OpenAI's `GET /v1/models` and `GET /v1/models/{id}`: the models a request can run on now.

A model can run now when an online miner serves it. With `openai_queue` set
(`aitbc gateway --openai-queue`) an OpenAI request waits in the queue for a
miner, so every text model of the catalog can run and all are listed. The
whole catalog, served or not, is ListModels' REST route, `GET /v1/catalog`.
Entries keep the catalog's extra fields (`miners`, `free_slots`, `aliases`,
prices...): OpenAI clients ignore what they do not know.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aitbc.v1 import models_pb2
from gateway.errors import GatewayError
from gateway.jobs import JobClient
from gateway.openai_api import openai_error
from gateway.rpc import require_api_key
from gateway.transcoding import message_to_json

TEXT: str = "text"


class _AnyText(Convertor[str]):
    """A path parameter of any characters, slashes and line breaks included (Starlette's `path` stops at those)."""

    regex = "[\\s\\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("any_text", _AnyText())


def runnable(model: models_pb2.Model, *, queueable: bool) -> bool:
    """Whether a request for `model` would run (or, queueing, wait for a miner) rather than fail with 503."""
    return model.kind == TEXT and (model.miners > 0 or queueable)


def _model_not_found(model_id: str, detail: str) -> GatewayError:
    return GatewayError(HTTPStatus.NOT_FOUND, "MODEL_NOT_FOUND", f"The model `{model_id}` {detail}", field="model")


class OpenAIModels:
    def __init__(self, jobs: JobClient, *, queueable: bool) -> None:
        self._jobs = jobs
        self._queueable = queueable

    def routes(self) -> list[Route]:
        return [
            Route("/v1/models", self._openai(self._list), methods=["GET"]),
            # Any text: ids such as `org/name` (as vLLM serves them) have slashes, and an id that is no
            # model id at all still deserves OpenAI's 404 rather than the router's.
            Route("/v1/models/{model_id:any_text}", self._openai(self._get), methods=["GET"]),
        ]

    @staticmethod
    def _openai(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def answer(request: Request) -> Response:
            try:
                return await endpoint(request)
            except GatewayError as error:
                return openai_error(error)

        return answer

    async def _catalog(self, request: Request) -> list[models_pb2.Model]:
        return list((await self._jobs.models(require_api_key(request.headers))).data)

    async def _list(self, request: Request) -> Response:
        models = [m for m in await self._catalog(request) if runnable(m, queueable=self._queueable)]
        return JSONResponse({"object": "list", "data": [message_to_json(model) for model in models]})

    async def _get(self, request: Request) -> Response:
        model_id: str = request.path_params["model_id"]
        for model in await self._catalog(request):
            if model_id == model.id or model_id in model.aliases:
                if not runnable(model, queueable=self._queueable):
                    raise _model_not_found(model_id, "is in the catalog, but no online miner serves it now")
                return JSONResponse(message_to_json(model))
        raise _model_not_found(model_id, "does not exist")
