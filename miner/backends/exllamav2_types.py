"""The model as the ExLlamaV2 backend sees it: what exllamav2_model loads and the backend drives.

A module of its own so that the backend and the loader both import it rather than each other. Nothing here
imports exllamav2 or torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from miner.backends.base import GpuInfo
from miner.backends.exllamav2_loop import DynamicGenerator, JobSpec
from miner.backends.exllamav2_prompt import PromptFormat
from miner.backends.exllamav2_settings import CachePlan


@dataclass(frozen=True, slots=True)
class TokenIds:
    # The engine's own tensor, shape (1, count).
    tensor: object
    count: int


class LoadedModel(Protocol):
    """A model ExLlamaV2 has loaded, in the backend's terms; exllamav2_model.ExLlamaV2Model is the real one."""

    @property
    def model_id(self) -> str: ...

    @property
    def plan(self) -> CachePlan: ...

    @property
    def prompt_format(self) -> PromptFormat: ...

    @property
    def generator(self) -> DynamicGenerator: ...

    def gpus(self) -> list[GpuInfo]: ...

    def encode(self, text: str, *, add_bos: bool) -> TokenIds:
        """Tokenize, reading special tokens such as the chat template's; safe on any thread."""
        ...

    def new_job(self, spec: JobSpec, identifier: int) -> object:
        """The engine's job for `spec`, stopping at the model's EOS tokens; called on the generator's thread."""
        ...

    def close(self) -> None:
        """Free the GPU memory; the generator runs no job."""
        ...
