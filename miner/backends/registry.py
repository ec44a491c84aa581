"""Inference backends by name. Each is imported only when chosen, so that missing engines cost nothing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from miner.backends.base import Backend


def _synthetic(**options: Any) -> Backend:
    from miner.backends.synthetic import SyntheticBackend

    return SyntheticBackend(**options)


def _llama_cpp(**options: Any) -> Backend:
    try:
        from miner.backends.llama_cpp import LlamaCppBackend
    except ModuleNotFoundError as exc:
        if exc.name != "llama_cpp":
            raise
        raise ModuleNotFoundError(
            "the llama.cpp backend needs llama-cpp-python; install it with `make install`",
            name=exc.name,
        ) from exc
    return LlamaCppBackend(**options)


def _exllamav2(**options: Any) -> Backend:
    # The module imports exllamav2 (and with it torch and a CUDA build) only inside load().
    from miner.backends.exllamav2 import ExLlamaV2Backend

    try:
        return ExLlamaV2Backend.load(**options)
    except ModuleNotFoundError as exc:
        if exc.name not in ("exllamav2", "torch"):
            raise
        raise ModuleNotFoundError(
            "the exllamav2 backend needs exllamav2 and a CUDA build of torch; docs/gpu-miner.md says how",
            name=exc.name,
        ) from exc


# Keyword options each factory takes are the keyword arguments of the backend's constructor (of
# ExLlamaV2Backend.load for exllamav2).
_FACTORIES: dict[str, Callable[..., Backend]] = {
    "synthetic": _synthetic,
    "llama.cpp": _llama_cpp,
    "exllamav2": _exllamav2,
}

BACKEND_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def create_backend(name: str, options: Mapping[str, object]) -> Backend:
    """Build the named backend; for a model backend this loads the model and blocks."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}") from None
    return factory(**options)
