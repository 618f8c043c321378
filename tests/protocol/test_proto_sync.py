"""CI check: the checked-in protobuf/gRPC stubs match what the .proto files generate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_checked_in_stubs_match_the_proto_files() -> None:
    pytest.importorskip(
        "grpc_tools", reason="protoc comes with the proto group: pip install --group proto"
    )
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "gen_proto.py"), "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
