"""The AITBC miner: an agent that serves inference jobs from the coordinator with a pluggable backend."""

from miner.agent import CoordinatorRejectedError, MinerAgent
from miner.backends.base import (
    Backend,
    ChatMessage,
    FinishReason,
    GenerationRequest,
    GpuInfo,
    InvalidRequestError,
    TokenChunk,
)
from miner.config import MinerConfig

__all__ = [
    "Backend",
    "ChatMessage",
    "CoordinatorRejectedError",
    "FinishReason",
    "GenerationRequest",
    "GpuInfo",
    "InvalidRequestError",
    "MinerAgent",
    "MinerConfig",
    "TokenChunk",
]
