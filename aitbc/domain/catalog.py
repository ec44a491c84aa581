"""The model catalog: which models exist, what hardware they need, what they cost.

A client names a model by its id or one of its aliases (`llama3.2`,
`llama3.2:1b`); names compare case-insensitively. A name no entry knows is an
INVALID_ARGUMENT naming the model. Miners advertise names too, and
`Catalog.canonical` maps them to the id routing works with.

Prices are integer micro-credits (µcr, 1 credit = 1,000,000 µcr) per 1,000
tokens, input (prompt) and output (generated) separately, as everywhere money
appears (`aitbc.domain.money`). A miner may quote its own price per model; the
catalog price applies where it does not.

GPU tiers (`TIERS`) rank a miner by the VRAM of its largest single GPU. The
thresholds sit below the size printed on the box because drivers report less
than that (a "16 GB" T4 reports 14.7 GiB, an "80 GB" H100 79.2 GiB):

    tier 0: no GPU, CPU only
    tier 1: any GPU
    tier 2: >= 14 GiB (16-24 GB cards: T4, RTX 4080, RTX 3090/4090)
    tier 3: >= 38 GiB (40-48 GB cards: A100 40GB, A6000, L40S)
    tier 4: >= 75 GiB (80 GB and up: A100 80GB, H100, H200)
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from aitbc.domain.errors import AitbcError, Reason
from aitbc.domain.money import MAX_AMOUNT
from aitbc.domain.units import parse_memory

GIB = 1 << 30


@dataclass(frozen=True, slots=True)
class GpuTier:
    level: int
    min_vram_bytes: int
    label: str


TIERS: tuple[GpuTier, ...] = (
    GpuTier(0, 0, "no GPU, CPU only"),
    GpuTier(1, 1, "any GPU"),
    GpuTier(2, 14 * GIB, "16-24 GB cards: T4, RTX 4080, RTX 3090/4090"),
    GpuTier(3, 38 * GIB, "40-48 GB cards: A100 40GB, A6000, L40S"),
    GpuTier(4, 75 * GIB, "80 GB and up: A100 80GB, H100, H200"),
)
MAX_TIER = TIERS[-1].level


def gpu_tier(vram_bytes: int) -> int:
    """The highest tier whose threshold `vram_bytes` (largest single GPU) reaches; 0 without a GPU."""
    level = 0
    for tier in TIERS:
        if vram_bytes >= tier.min_vram_bytes:
            level = tier.level
    return level


class ModelKind(StrEnum):
    TEXT = "text"
    IMAGE = "image"  # reserved: no image backend exists yet


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """One model. Construction rejects values no miner or client could use (ValueError naming the field)."""

    id: str
    aliases: tuple[str, ...] = ()
    kind: ModelKind = ModelKind.TEXT
    min_tier: int = 0
    min_vram_bytes: int = 0
    context_length: int = 2048
    price_input_per_1k: int = 0  # µcr per 1,000 prompt tokens
    price_output_per_1k: int = 0  # µcr per 1,000 generated tokens
    description: str = ""

    def __post_init__(self) -> None:
        # Messages start with the field name so that `Catalog.from_json` can prefix the entry's index.
        if not _is_name(self.id):
            raise ValueError(f"id: {self.id!r} is not a model name")
        for alias in self.aliases:
            if not _is_name(alias):
                raise ValueError(f"aliases: {alias!r} is not a model name")
        if not 0 <= self.min_tier <= MAX_TIER:
            raise ValueError(f"min_tier: must be between 0 and {MAX_TIER}, got {self.min_tier}")
        if self.min_vram_bytes < 0:
            raise ValueError(f"min_vram: must not be negative, got {self.min_vram_bytes}")
        if self.context_length < 1:
            raise ValueError(f"context_length: must be positive, got {self.context_length}")
        for field, price in (
            ("price_input_per_1k", self.price_input_per_1k),
            ("price_output_per_1k", self.price_output_per_1k),
        ):
            if isinstance(price, bool) or not isinstance(price, int) or not 0 <= price <= MAX_AMOUNT:
                raise ValueError(f"{field}: must be an integer of µcr per 1k tokens, 0 to {MAX_AMOUNT}, got {price!r}")

    def is_named(self, name: str) -> bool:
        """Whether `name` is this entry's id or one of its aliases (case-insensitively, as the catalog compares)."""
        folded = name.casefold()
        return folded == self.id.casefold() or any(folded == alias.casefold() for alias in self.aliases)


class Catalog:
    """Model entries indexed by id and alias, case-insensitively; every name belongs to exactly one entry."""

    def __init__(self, entries: Iterable[ModelEntry]) -> None:
        self._by_id: dict[str, ModelEntry] = {}
        for entry in entries:
            if entry.id.casefold() in self._by_id:
                raise ValueError(f"duplicate model id {entry.id!r}")
            self._by_id[entry.id.casefold()] = entry
        self._by_name = dict(self._by_id)
        for entry in self._by_id.values():
            for alias in entry.aliases:
                holder = self._by_name.setdefault(alias.casefold(), entry)
                if holder is not entry:
                    what = "the id" if holder.id.casefold() == alias.casefold() else "an alias"
                    raise ValueError(f"alias {alias!r} of {entry.id!r} is already {what} of {holder.id!r}")

    def find(self, name: str) -> ModelEntry | None:
        return self._by_name.get(name.casefold())

    def resolve(self, name: str) -> ModelEntry:
        """The entry `name` (an id or alias) denotes; an unknown name is MODEL_NOT_FOUND on `model`."""
        entry = self.find(name)
        if entry is not None:
            return entry
        known = [known_entry.id for known_entry in self.entries()]
        if not known:
            raise model_not_found(f"unknown model {name!r}; no models are configured")
        listed = ", ".join(known[:5]) + (", ..." if len(known) > 5 else "")
        raise model_not_found(f"unknown model {name!r}; known models include {listed}")

    def canonical(self, name: str) -> str | None:
        """The id a miner-advertised name maps to, or None for a model the catalog does not know."""
        entry = self.find(name)
        return None if entry is None else entry.id

    def entries(self) -> list[ModelEntry]:
        return sorted(self._by_id.values(), key=lambda entry: entry.id)

    def merged(self, overrides: Iterable[ModelEntry]) -> Catalog:
        """A catalog where each override replaces the entry with the same id and new ids are added."""
        combined = dict(self._by_id)
        combined.update((entry.id.casefold(), entry) for entry in Catalog(overrides).entries())
        return Catalog(combined.values())

    @classmethod
    def from_json(cls, data: object, *, base: Catalog | None = None) -> Catalog:
        """Parse `{"models": [{...}, ...]}` (decoded JSON) and merge it over `base`.

        Without a base the document is the whole catalog. Errors are ValueErrors
        naming the entry and field, such as `models[2].min_vram: ...`; unknown
        fields are errors too, so a typo does not silently fall back to a default.
        """
        if not isinstance(data, dict) or set(data) != {"models"} or not isinstance(data["models"], list):
            raise ValueError('catalog: expected an object with one field, "models", holding an array of models')
        parsed = cls(_entry_from_json(index, item) for index, item in enumerate(data["models"]))
        return parsed if base is None else base.merged(parsed.entries())


_JSON_FIELDS = frozenset(
    {
        "id",
        "aliases",
        "kind",
        "min_tier",
        "min_vram",
        "context_length",
        "price_input_per_1k",
        "price_output_per_1k",
        "description",
    }
)


def _entry_from_json(index: int, item: object) -> ModelEntry:
    where = f"models[{index}]"
    if not isinstance(item, dict):
        raise ValueError(f"{where}: expected an object, got {_json_type(item)}")
    unknown = sorted(set(item) - _JSON_FIELDS)
    if unknown:
        raise ValueError(f"{where}: unknown field {', '.join(map(repr, unknown))}")
    if "id" not in item:
        raise ValueError(f"{where}.id: required")
    aliases = item.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(alias, str) for alias in aliases):
        raise ValueError(f"{where}.aliases: expected an array of strings")
    # Type errors are found first, outside the try, so their messages are prefixed once.
    build = functools.partial(
        ModelEntry,
        id=_string(item, where, "id", ""),
        aliases=tuple(aliases),
        kind=_kind(item, where),
        min_tier=_integer(item, where, "min_tier", 0),
        min_vram_bytes=_memory(item, where),
        context_length=_integer(item, where, "context_length", 2048),
        price_input_per_1k=_price(item, where, "price_input_per_1k"),
        price_output_per_1k=_price(item, where, "price_output_per_1k"),
        description=_string(item, where, "description", ""),
    )
    try:
        return build()
    except ValueError as error:
        raise ValueError(f"{where}.{error}") from None


def _string(item: Mapping[str, object], where: str, key: str, default: str) -> str:
    value = item.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key}: expected a string, got {_json_type(value)}")
    return value


def _integer(item: Mapping[str, object], where: str, key: str, default: int) -> int:
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}.{key}: expected an integer, got {_json_type(value)}")
    return value


def _price(item: Mapping[str, object], where: str, key: str) -> int:
    """µcr per 1k tokens: an integer, so that a price written in credits (0.004) is an error, not 0 µcr."""
    value = item.get(key, 0)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 2000.0 is what some JSON writers emit for 2000
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}.{key}: expected an integer of µcr per 1k tokens, got {_json_type(value)} {value!r}")
    return value


def _kind(item: Mapping[str, object], where: str) -> ModelKind:
    text = _string(item, where, "kind", ModelKind.TEXT)
    try:
        return ModelKind(text)
    except ValueError:
        raise ValueError(f"{where}.kind: {text!r} is not one of {', '.join(ModelKind)}") from None


def _memory(item: Mapping[str, object], where: str) -> int:
    value = item.get("min_vram", 0)
    if isinstance(value, str):
        try:
            return parse_memory(value, field="min_vram")
        except AitbcError as error:
            raise ValueError(f"{where}.{error.message}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f'{where}.min_vram: expected bytes or a size such as "16GB", got {_json_type(value)}')
    return value


def _is_name(name: str) -> bool:
    return bool(name) and name == name.strip()


def _json_type(value: object) -> str:
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case str():
            return "a string"
        case int() | float():
            return "a number"
        case list():
            return "an array"
        case _:
            return "an object"


DEFAULT_CATALOG = Catalog(
    [
        ModelEntry(
            "smollm2-135m-instruct",
            aliases=("smollm2",),
            context_length=8192,
            price_input_per_1k=100,
            price_output_per_1k=200,
            description="SmolLM2 135M Instruct: tiny, runs on any CPU",
        ),
        # Llama 3.2 1B and 3B run on a CPU with llama.cpp (a Q4 GGUF needs about 1 and 2.5 GB of RAM), so they
        # ask for no GPU: the tier says what a model needs, and a GPU miner serving them qualifies all the same.
        ModelEntry(
            "llama-3.2-1b-instruct",
            aliases=("llama3.2", "llama3.2:1b"),
            context_length=131_072,
            price_input_per_1k=1_000,
            price_output_per_1k=2_000,
            description="Llama 3.2 1B Instruct",
        ),
        ModelEntry(
            "llama-3.2-3b-instruct",
            aliases=("llama3.2:3b",),
            context_length=131_072,
            price_input_per_1k=2_000,
            price_output_per_1k=4_000,
            description="Llama 3.2 3B Instruct",
        ),
        ModelEntry(
            "codellama-7b-instruct",
            aliases=("codellama",),
            min_tier=2,
            # 14 GiB rather than 16: "16 GB" cards report 14.7-15.9 GiB and must qualify.
            min_vram_bytes=14 * GIB,
            context_length=16_384,
            price_input_per_1k=5_000,
            price_output_per_1k=10_000,
            description="Code Llama 7B Instruct",
        ),
        ModelEntry(
            "stable-diffusion",
            kind=ModelKind.IMAGE,
            min_tier=2,
            context_length=77,  # CLIP's prompt length in tokens
            description="reserved: image generation is not routed yet",
        ),
        ModelEntry(
            "synthetic",
            context_length=8192,
            description="the synthetic test and benchmark backend: deterministic text, no model weights",
        ),
    ]
)


def model_not_found(message: str) -> AitbcError:
    return AitbcError(Reason.MODEL_NOT_FOUND, f"model: {message}", field="model")
