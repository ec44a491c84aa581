"""Inference backends: the interface, and a registry that builds one by name."""

from miner.backends.base import (
    Backend,
    ChatMessage,
    FinishReason,
    GenerationRequest,
    GpuInfo,
    InvalidRequestError,
    TokenChunk,
)
from miner.backends.registry import BACKEND_NAMES, create_backend

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "ChatMessage",
    "FinishReason",
    "GenerationRequest",
    "GpuInfo",
    "InvalidRequestError",
    "TokenChunk",
    "create_backend",
]
