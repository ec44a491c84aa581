"""The model catalog: the built-in defaults, extended or overridden by `models.json` in AITBC_HOME."""

from __future__ import annotations

import json
from pathlib import Path

from aitbc.domain.catalog import DEFAULT_CATALOG, Catalog

CATALOG_FILE = "models.json"


class CatalogFileError(ValueError):
    """models.json is not valid JSON or not a valid catalog; the message names the file and the problem."""


def load_catalog(home: Path) -> Catalog:
    """DEFAULT_CATALOG merged with `home/models.json` when that file exists.

    The file looks like `{"models": [{"id": "mistral-7b-instruct", "aliases": ["mistral"], "min_tier": 2,
    "min_vram": "14GB", "context_length": 32768, "price_input_per_1k": 4000, "price_output_per_1k": 8000}]}`;
    an entry with a default's id replaces that default.
    """
    path = home / CATALOG_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return DEFAULT_CATALOG
    try:
        return Catalog.from_json(json.loads(text), base=DEFAULT_CATALOG)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        raise CatalogFileError(f"{path}: {exc}") from exc
