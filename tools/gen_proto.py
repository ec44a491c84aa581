"""Generate the Python code for proto/aitbc/v1 into aitbc/v1.

`python tools/gen_proto.py` rewrites the checked-in files;
`python tools/gen_proto.py --check` exits 1 when they drift from the .proto files.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
GOOGLEAPIS = ROOT / "third_party" / "googleapis"
PACKAGE = Path("aitbc") / "v1"


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
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def generated_files(base: Path) -> set[str]:
    return {
        p.name
        for p in (base / PACKAGE).iterdir()
        if p.name.endswith(("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi"))
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
