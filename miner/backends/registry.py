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


# Keyword options each factory takes are the keyword arguments of the backend's constructor.
_FACTORIES: dict[str, Callable[..., Backend]] = {
    "synthetic": _synthetic,
    "llama.cpp": _llama_cpp,
}

BACKEND_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def create_backend(name: str, options: Mapping[str, object]) -> Backend:
    """Build the named backend; for a model backend this loads the model and blocks."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}") from None
    return factory(**options)
