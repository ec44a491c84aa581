"""The SDK's public surface, pinned: what `aitbc.client` and `aitbc_sdk` export, and nothing else public."""

from __future__ import annotations

import pkgutil
import types

import pytest

import aitbc.client
import aitbc_sdk

CLIENT_EXPORTS = [
    "AitbcApiError",
    "AsyncClient",
    "Client",
    "Job",
    "JobEvent",
    "JobPage",
    "JobStatus",
    "Routing",
    "SamplingOptions",
    "SamplingParams",
    "StatusCode",
    "Usage",
]
CLIENT_PUBLIC_MODULES = ["async_client", "errors", "models", "sync_client"]
SDK_SHIM_EXPORTS = ["AITBCClient", "AitbcApiError", "Job", "JobStatus", "StatusCode", "parse_api_url"]


@pytest.mark.parametrize(
    ("package", "exports"), [(aitbc.client, CLIENT_EXPORTS), (aitbc_sdk, SDK_SHIM_EXPORTS)], ids=["client", "sdk"]
)
def test_all_is_the_pinned_list(package: types.ModuleType, exports: list[str]) -> None:
    assert package.__all__ == exports
    assert exports == sorted(exports)


@pytest.mark.parametrize("package", [aitbc.client, aitbc_sdk], ids=["client", "sdk"])
def test_every_export_exists(package: types.ModuleType) -> None:
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert missing == []


@pytest.mark.parametrize("package", [aitbc.client, aitbc_sdk], ids=["client", "sdk"])
def test_every_public_name_is_exported(package: types.ModuleType) -> None:
    # Submodules are bound in their package's namespace by the import system; the public ones
    # (aitbc.client.models, ...) are importable on their own, and `__all__` names what they hold.
    public = [
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    ]
    assert sorted(public) == sorted(package.__all__)


@pytest.mark.parametrize(("package", "modules"), [(aitbc.client, CLIENT_PUBLIC_MODULES), (aitbc_sdk, [])])
def test_other_modules_are_private(package: types.ModuleType, modules: list[str]) -> None:
    names = [module.name for module in pkgutil.iter_modules(package.__path__)]
    assert sorted(name for name in names if not name.startswith("_")) == modules


def test_exports_are_the_sdk_objects_themselves() -> None:
    shared = set(CLIENT_EXPORTS) & set(SDK_SHIM_EXPORTS)
    assert shared == {"AitbcApiError", "Job", "JobStatus", "StatusCode"}
    assert all(getattr(aitbc_sdk, name) is getattr(aitbc.client, name) for name in shared)
