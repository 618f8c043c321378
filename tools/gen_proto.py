"""Generate the protobuf and gRPC stubs from the `.proto` files in this repository.

The stubs are checked in so that installing infergraph needs no protoc. CI runs
``gen_proto.py --check``, which regenerates into a temporary folder and fails when
the checked-in stubs differ from what the `.proto` files produce.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PROTO_DIR = SRC / "infergraph" / "protocol" / "proto"


def proto_files() -> list[Path]:
    return sorted(PROTO_DIR.rglob("*.proto"))


def generate(out: Path) -> None:
    import grpc_tools
    from grpc_tools import protoc

    include = str(Path(grpc_tools.__file__).parent / "_proto")
    for proto in proto_files():
        rel = proto.relative_to(SRC)
        args = [
            "protoc",
            f"-I{SRC}",
            f"-I{include}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            str(rel),
        ]
        if "service " in proto.read_text():
            args.insert(3, f"--grpc_python_out={out}")
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {rel}")


def generated(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*_pb2*.py*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the stubs are stale")
    check = parser.parse_args().check
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        import os

        cwd = os.getcwd()
        os.chdir(SRC)
        try:
            generate(out)
        finally:
            os.chdir(cwd)
        stale = [
            str(rel)
            for rel in generated(out)
            if not (SRC / rel).exists() or not filecmp.cmp(out / rel, SRC / rel, shallow=False)
        ]
        expected = set(generated(out))
        extra = [str(rel) for rel in generated(SRC) if rel not in expected]
        if check:
            if stale or extra:
                print("stale or extra stubs (run `make proto`):", *stale, *extra, sep="\n  ")
                return 1
            print("protobuf stubs match the .proto files")
            return 0
        for rel in generated(out):
            shutil.copyfile(out / rel, SRC / rel)
            print("wrote", SRC / rel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
