from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aitbc.domain.catalog import DEFAULT_CATALOG, GIB, TIERS, Catalog, ModelEntry, ModelKind, gpu_tier
from aitbc.domain.errors import AitbcError, Reason


def test_default_catalog_resolves_ids_and_aliases_in_any_case() -> None:
    for name in ("llama3.2", "llama3.2:1b", "LLAMA3.2", "Llama-3.2-1B-Instruct"):
        assert DEFAULT_CATALOG.resolve(name).id == "llama-3.2-1b-instruct"
    assert DEFAULT_CATALOG.resolve("llama3.2:3b").id == "llama-3.2-3b-instruct"
    assert DEFAULT_CATALOG.resolve("smollm2").context_length == 8192
    assert DEFAULT_CATALOG.resolve("codellama").min_tier == 2
    assert DEFAULT_CATALOG.resolve("stable-diffusion").kind is ModelKind.IMAGE
    synthetic = DEFAULT_CATALOG.resolve("synthetic")
    assert (synthetic.min_tier, synthetic.price_input_per_1k, synthetic.price_output_per_1k) == (0, 0, 0)


def test_unknown_model_is_model_not_found_naming_it_and_some_known_ids() -> None:
    with pytest.raises(AitbcError) as caught:
        DEFAULT_CATALOG.resolve("gpt-9")
    assert caught.value.reason is Reason.MODEL_NOT_FOUND
    assert caught.value.field == "model"
    assert "'gpt-9'" in caught.value.message
    assert "codellama-7b-instruct" in caught.value.message
    with pytest.raises(AitbcError, match="no models are configured"):
        Catalog([]).resolve("x")


def test_find_canonical_and_entries() -> None:
    assert DEFAULT_CATALOG.find("nope") is None
    assert DEFAULT_CATALOG.canonical("SMOLLM2") == "smollm2-135m-instruct"
    assert DEFAULT_CATALOG.canonical("nope") is None
    ids = [entry.id for entry in DEFAULT_CATALOG.entries()]
    assert ids == sorted(ids)
    assert len(ids) == 6


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([ModelEntry("a"), ModelEntry("A")], "duplicate model id 'A'"),
        ([ModelEntry("a", aliases=("x",)), ModelEntry("b", aliases=("X",))], "alias 'X' of 'b' is already an alias"),
        ([ModelEntry("a"), ModelEntry("b", aliases=("A",))], "alias 'A' of 'b' is already the id of 'a'"),
        ([ModelEntry("b", aliases=("a",)), ModelEntry("a")], "alias 'a' of 'b' is already the id of 'a'"),
    ],
)
def test_names_belong_to_one_entry(entries: list[ModelEntry], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Catalog(entries)


def test_an_entry_may_repeat_its_own_names() -> None:
    catalog = Catalog([ModelEntry("a", aliases=("A", "b", "b"))])
    assert catalog.resolve("B").id == "a"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"id": ""}, "id: '' is not a model name"),
        ({"id": "a", "aliases": (" b",)}, "aliases: ' b' is not a model name"),
        ({"id": "a", "min_tier": 5}, "min_tier: must be between 0 and 4, got 5"),
        ({"id": "a", "min_tier": -1}, "min_tier"),
        ({"id": "a", "min_vram_bytes": -1}, "min_vram: must not be negative"),
        ({"id": "a", "context_length": 0}, "context_length: must be positive"),
        ({"id": "a", "price_input_per_1k": -1}, "price_input_per_1k"),
        ({"id": "a", "price_input_per_1k": 0.5}, "price_input_per_1k: must be an integer of µcr"),
        ({"id": "a", "price_output_per_1k": float("nan")}, "price_output_per_1k"),
        ({"id": "a", "price_output_per_1k": float("inf")}, "price_output_per_1k"),
        ({"id": "a", "price_output_per_1k": 2**53}, "price_output_per_1k"),
    ],
)
def test_entry_rejects_unusable_values(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelEntry(**entry)  # type: ignore[arg-type]


def test_merged_replaces_by_id_and_adds_new_entries() -> None:
    cheaper = ModelEntry("synthetic", aliases=("fake",), price_output_per_1k=500_000)
    merged = DEFAULT_CATALOG.merged([cheaper, ModelEntry("mistral-7b", min_tier=2)])
    assert merged.resolve("fake") is cheaper
    assert merged.resolve("mistral-7b").min_tier == 2
    assert merged.resolve("llama3.2") is DEFAULT_CATALOG.resolve("llama3.2")
    assert DEFAULT_CATALOG.find("fake") is None  # the original is untouched
    with pytest.raises(ValueError, match="alias 'smollm2'"):
        DEFAULT_CATALOG.merged([ModelEntry("other", aliases=("smollm2",))])
    with pytest.raises(ValueError, match="duplicate"):
        DEFAULT_CATALOG.merged([ModelEntry("x"), ModelEntry("x")])


def test_from_json_parses_every_field() -> None:
    document = {
        "models": [
            {
                "id": "qwen-7b",
                "aliases": ["qwen"],
                "kind": "text",
                "min_tier": 2,
                "min_vram": "16GB",
                "context_length": 32768,
                "price_input_per_1k": 1,
                "price_output_per_1k": 20000.0,  # an integral float is the integer it spells
                "description": "Qwen",
            },
            {"id": "tiny", "min_vram": 1024},
        ]
    }
    catalog = Catalog.from_json(document)
    assert catalog.resolve("qwen") == ModelEntry(
        "qwen-7b",
        aliases=("qwen",),
        min_tier=2,
        min_vram_bytes=16 * GIB,
        context_length=32768,
        price_input_per_1k=1,
        price_output_per_1k=20_000,
        description="Qwen",
    )
    assert catalog.resolve("tiny") == ModelEntry("tiny", min_vram_bytes=1024)
    assert catalog.find("llama3.2") is None  # no base: the document is the whole catalog
    over_defaults = Catalog.from_json({"models": [{"id": "synthetic", "price_input_per_1k": 2}]}, base=DEFAULT_CATALOG)
    assert over_defaults.resolve("synthetic").price_input_per_1k == 2
    assert over_defaults.resolve("llama3.2").id == "llama-3.2-1b-instruct"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], 'expected an object with one field, "models"'),
        ({"models": {}}, '"models"'),
        ({"models": [], "extra": 1}, '"models"'),
        ({"models": [{"id": "ok"}, "x"]}, r"^models\[1\]: expected an object, got a string$"),
        ({"models": [{"name": "x"}]}, r"^models\[0\]: unknown field 'name'$"),
        ({"models": [{}]}, r"^models\[0\]\.id: required$"),
        ({"models": [{"id": 7}]}, r"^models\[0\]\.id: expected a string, got a number$"),
        ({"models": [{"id": ""}]}, r"^models\[0\]\.id: '' is not a model name$"),
        ({"models": [{"id": "a", "aliases": "b"}]}, r"^models\[0\]\.aliases: expected an array of strings$"),
        ({"models": [{"id": "a", "aliases": [1]}]}, r"^models\[0\]\.aliases: expected an array of strings$"),
        ({"models": [{"id": "a", "kind": "video"}]}, r"^models\[0\]\.kind: 'video' is not one of text, image$"),
        ({"models": [{"id": "a", "min_tier": True}]}, r"^models\[0\]\.min_tier: expected an integer, got a boolean$"),
        ({"models": [{"id": "a", "min_tier": 1.5}]}, r"^models\[0\]\.min_tier: expected an integer, got a number$"),
        ({"models": [{"id": "a", "min_tier": 9}]}, r"^models\[0\]\.min_tier: must be between 0 and 4, got 9$"),
        ({"models": [{"id": "a", "min_vram": "lots"}]}, r"^models\[0\]\.min_vram: 'lots' is not a memory size"),
        ({"models": [{"id": "a", "min_vram": None}]}, r"^models\[0\]\.min_vram: expected bytes .* got null$"),
        ({"models": [{"id": "a", "min_vram": -5}]}, r"^models\[0\]\.min_vram: must not be negative"),
        ({"models": [{"id": "a", "context_length": 0}]}, r"^models\[0\]\.context_length: must be positive"),
        (
            {"models": [{"id": "a", "price_input_per_1k": "1"}]},
            r"^models\[0\]\.price_input_per_1k: expected an integer of µcr per 1k tokens, got a string '1'$",
        ),
        (
            {"models": [{"id": "a", "price_input_per_1k": 0.004}]},  # credits, as prices were written before
            r"^models\[0\]\.price_input_per_1k: expected an integer of µcr per 1k tokens, got a number 0.004$",
        ),
        ({"models": [{"id": "a", "price_output_per_1k": -1}]}, r"^models\[0\]\.price_output_per_1k: must be"),
        ({"models": [{"id": "a", "description": ["x"]}]}, r"^models\[0\]\.description: expected a string"),
        ({"models": [{"id": "a"}, {"id": "A"}]}, "duplicate model id 'A'"),
    ],
)
def test_from_json_errors_name_the_entry_and_field(document: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Catalog.from_json(document)


def test_tier_table() -> None:
    assert [tier.level for tier in TIERS] == list(range(len(TIERS)))
    # Sizes as drivers report them, which is less than the size on the box.
    reported = {
        0: 0,
        1: 8 * GIB,
        2: 15_843_721_216,  # T4 "16 GB"
        3: 42_505_273_344,  # A100 "40 GB"
        4: 85_045_231_616,  # H100 "80 GB"
    }
    for level, vram in reported.items():
        assert gpu_tier(vram) == level
    assert gpu_tier(25_393_692_672) == 2  # RTX 4090 "24 GB"
    assert gpu_tier(150_110_011_392) == 4  # H200
    assert gpu_tier(-1) == 0


@given(st.integers(min_value=-1, max_value=1 << 42), st.integers(min_value=0, max_value=1 << 42))
def test_gpu_tier_never_falls_as_vram_grows(vram: int, more: int) -> None:
    assert 0 <= gpu_tier(vram) <= gpu_tier(vram + more) <= TIERS[-1].level


names = st.text(alphabet="abcdefghij.:-", min_size=1, max_size=6)


@given(st.lists(st.lists(names, min_size=1, max_size=3), max_size=6, unique_by=lambda ns: ns[0]))
def test_every_name_resolves_to_its_entry(groups: list[list[str]]) -> None:
    seen: set[str] = set()
    entries = []
    for group in groups:
        fresh = [name for name in dict.fromkeys(group) if name.casefold() not in seen]
        if fresh:
            seen.update(name.casefold() for name in fresh)
            entries.append(ModelEntry(fresh[0], aliases=tuple(fresh[1:])))
    catalog = Catalog(entries)
    for entry in entries:
        for name in (entry.id, *entry.aliases):
            assert catalog.resolve(name.upper()) is entry
            assert catalog.canonical(name) == entry.id
