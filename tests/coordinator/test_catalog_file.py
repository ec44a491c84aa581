from __future__ import annotations

import json
from pathlib import Path

import pytest

from aitbc.coordinator.catalog_file import CATALOG_FILE, CatalogFileError, load_catalog
from aitbc.domain.catalog import DEFAULT_CATALOG


def test_no_file_means_the_defaults(tmp_path: Path) -> None:
    assert load_catalog(tmp_path).entries() == DEFAULT_CATALOG.entries()


def test_the_file_adds_and_overrides_entries(tmp_path: Path) -> None:
    models = {
        "models": [
            {"id": "mistral-7b-instruct", "aliases": ["mistral"], "min_tier": 2, "min_vram": "14GB"},
            {"id": "smollm2-135m-instruct", "aliases": ["smollm2", "tiny"], "price_output_per_1k": 500_000},
        ]
    }
    (tmp_path / CATALOG_FILE).write_text(json.dumps(models))
    catalog = load_catalog(tmp_path)
    assert catalog.resolve("mistral").id == "mistral-7b-instruct"
    assert catalog.resolve("mistral").min_vram_bytes == 14 << 30
    assert catalog.resolve("tiny").price_output_per_1k == 500_000
    assert catalog.resolve("llama3.2").id == "llama-3.2-1b-instruct"  # defaults stay


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", "models.json"), ('{"models": [{"aliases": ["x"]}]}', "models[0]")],
)
def test_a_bad_file_names_itself_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / CATALOG_FILE).write_text(text)
    with pytest.raises(CatalogFileError, match=r"models\.json") as caught:
        load_catalog(tmp_path)
    assert message in str(caught.value)
