"""Generate the Python code for proto/aitbc/v1 into aitbc/v1, and the .proto comments the OpenAPI document carries.

`python tools/gen_proto.py` rewrites the checked-in files;
`python tools/gen_proto.py --check` exits 1 when they drift from the .proto files.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
GOOGLEAPIS = ROOT / "third_party" / "googleapis"
PACKAGE = Path("aitbc") / "v1"
# The comments of every service, method, message, field and enum value, by full name
# (gateway/openapi.py reads them): the generated code carries no source info.
COMMENTS_FILE = "api_comments.json"

# Paths in a FileDescriptorProto's source info (descriptor.proto's field numbers).
_MESSAGE, _ENUM, _SERVICE = 4, 5, 6
_FIELD, _NESTED, _NESTED_ENUM, _VALUE, _METHOD = 2, 3, 4, 2, 2


def generate(out_dir: Path) -> None:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE).glob("*.proto"))
    well_known = str(resources.files("grpc_tools") / "_proto")
    # mypy-protobuf's plugin types the gRPC stubs too (protoc's own .pyi covers messages only).
    grpc_stub_plugin = Path(sys.executable).with_name("protoc-gen-mypy_grpc")
    args = [
        "grpc_tools.protoc",
        f"--plugin=protoc-gen-mypy_grpc={grpc_stub_plugin}",
        f"-I{PROTO_ROOT}",
        f"-I{GOOGLEAPIS}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        "--include_source_info",
        f"--descriptor_set_out={out_dir / 'descriptors.binpb'}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    descriptors = descriptor_pb2.FileDescriptorSet.FromString((out_dir / "descriptors.binpb").read_bytes())
    (out_dir / "descriptors.binpb").unlink()
    text = json.dumps(comments(descriptors), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    (out_dir / PACKAGE / COMMENTS_FILE).write_text(text, encoding="utf-8")


def _clean(comment: str) -> str:
    return "\n".join(line.strip() for line in comment.strip().splitlines())


def _message_names(
    names: dict[tuple[int, ...], str], path: tuple[int, ...], proto: descriptor_pb2.DescriptorProto, prefix: str
) -> None:
    name = f"{prefix}.{proto.name}"
    names[path] = name
    for index, field in enumerate(proto.field):
        names[(*path, _FIELD, index)] = f"{name}.{field.name}"
    for index, nested in enumerate(proto.nested_type):
        _message_names(names, (*path, _NESTED, index), nested, name)
    for index, nested_enum in enumerate(proto.enum_type):
        _enum_names(names, (*path, _NESTED_ENUM, index), nested_enum, name)


def _enum_names(
    names: dict[tuple[int, ...], str], path: tuple[int, ...], proto: descriptor_pb2.EnumDescriptorProto, prefix: str
) -> None:
    names[path] = f"{prefix}.{proto.name}"
    for index, value in enumerate(proto.value):
        names[(*path, _VALUE, index)] = f"{prefix}.{proto.name}.{value.name}"


def comments(descriptors: descriptor_pb2.FileDescriptorSet) -> dict[str, str]:
    """Leading comments by full name: `aitbc.v1.JobService.SubmitJob`, `aitbc.v1.Job.status`, ..."""
    found: dict[str, str] = {}
    for file in descriptors.file:
        names: dict[tuple[int, ...], str] = {}
        for index, message_proto in enumerate(file.message_type):
            _message_names(names, (_MESSAGE, index), message_proto, file.package)
        for index, enum_proto in enumerate(file.enum_type):
            _enum_names(names, (_ENUM, index), enum_proto, file.package)
        for index, service in enumerate(file.service):
            names[(_SERVICE, index)] = f"{file.package}.{service.name}"
            for method_index, method in enumerate(service.method):
                names[(_SERVICE, index, _METHOD, method_index)] = f"{file.package}.{service.name}.{method.name}"
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            if name is not None and location.leading_comments.strip():
                found[name] = _clean(location.leading_comments)
    return found


def generated_files(base: Path) -> set[str]:
    return {
        p.name
        for p in (base / PACKAGE).iterdir()
        if p.name.endswith(("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")) or p.name == COMMENTS_FILE
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if checked-in code differs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        generate(out)
        fresh = generated_files(out)
        if args.check:
            current = generated_files(ROOT) if (ROOT / PACKAGE).is_dir() else set()
            drift = sorted(fresh ^ current) + sorted(
                name
                for name in fresh & current
                if not filecmp.cmp(out / PACKAGE / name, ROOT / PACKAGE / name, shallow=False)
            )
            if drift:
                print("generated code is stale; run `make proto`:", ", ".join(drift), file=sys.stderr)
                return 1
            return 0
        target = ROOT / PACKAGE
        target.mkdir(parents=True, exist_ok=True)
        for stale in generated_files(ROOT) - fresh:
            (target / stale).unlink()
        for name in fresh:
            shutil.copyfile(out / PACKAGE / name, target / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
