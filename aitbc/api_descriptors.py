"""What the aitbc.v1 descriptors say about the API: its files, and which methods need no API key.

The coordinator's interceptor and the gateway both read `option (aitbc.v1.keyless)` from here, so the
.proto file is the one place that makes a method public.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

from google.protobuf.descriptor import FileDescriptor, MethodDescriptor

import aitbc.v1
from aitbc.v1 import options_pb2


def api_files(package: ModuleType = aitbc.v1) -> list[FileDescriptor]:
    """The file descriptors of every generated `*_pb2` module in `package` (e.g. aitbc.v1)."""
    return [
        importlib.import_module(f"{package.__name__}.{module.name}").DESCRIPTOR
        for module in pkgutil.iter_modules(package.__path__)
        if module.name.endswith("_pb2")
    ]


def is_keyless(method: MethodDescriptor) -> bool:
    # protoc's .pyi types an extension as a plain FieldDescriptor, which the Extensions map's stub refuses.
    return bool(method.GetOptions().Extensions[options_pb2.keyless])  # type: ignore[index]


@cache
def keyless_paths() -> frozenset[str]:
    """`/aitbc.v1.Service/Method` for every keyless method: the paths gRPC calls them by.

    Keyless methods are unary: a public stream would be an unmetered hold on the coordinator.
    """
    paths = set()
    for file in api_files():
        for service in file.services_by_name.values():
            for method in filter(is_keyless, service.methods):
                if method.client_streaming or method.server_streaming:
                    raise ValueError(f"{method.full_name} is keyless and streams; keyless methods must be unary")
                paths.add(f"/{service.full_name}/{method.name}")
    return frozenset(paths)
