"""``python -m infergraph fetch-model URI DIR`` as the init container runs it: a real
process, a real S3 API configured by the AWS environment, one-line errors and exit 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infergraph.servers import storage
from tests.helpers import model_stores
from tests.helpers.model_stores import CREDENTIALS, S3
from tests.helpers.procs import PYTHON, clean_env

pytestmark = pytest.mark.slow  # every test runs the command as a process

s3 = model_stores.s3
s3_endpoint = model_stores.s3_endpoint


def fetch(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "infergraph", "fetch-model", *args],
        env=clean_env(env), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_file_uri(tmp_path: Path) -> None:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    (tmp_path / "src" / "model.joblib").write_bytes(b"m")
    (tmp_path / "src" / "sub" / "metadata.yaml").write_text("name: x")
    result = fetch((tmp_path / "src").as_uri(), str(tmp_path / "mnt" / "models"))
    assert result.returncode == 0, result.stderr
    assert "2 file(s) in" in result.stderr
    assert (tmp_path / "mnt" / "models" / "sub" / "metadata.yaml").read_text() == "name: x"


def test_s3_with_the_aws_environment(s3: S3, tmp_path: Path) -> None:
    uri = s3.put("iris/model.skops", b"skops")
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL_S3": s3.endpoint}
    result = fetch(uri.rsplit("/", 1)[0], str(tmp_path / "models"), env=env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "models" / "model.skops").read_bytes() == b"skops"
    assert storage.origin(tmp_path / "models") == f"s3://{s3.bucket}/iris"


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        pytest.param("s3://{bucket}/missing", ["no object and no folder"], id="missing-object"),
        pytest.param("pvc://claim/iris", ["PersistentVolumeClaim"], id="pvc"),
        pytest.param("ftp://host/iris", ["unsupported scheme ftp://"], id="bad-scheme"),
    ],
)
def test_failures_are_one_line_and_exit_1(
    s3: S3, tmp_path: Path, uri: str, words: list[str]
) -> None:
    env = {**CREDENTIALS, "AWS_ENDPOINT_URL": s3.endpoint}
    result = fetch(uri.format(bucket=s3.bucket), str(tmp_path / "models"), env=env)
    assert result.returncode == 1
    assert result.stderr.startswith("infergraph fetch-model: error: ")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    for word in words:
        assert word in result.stderr


def test_a_missing_extra_names_it(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['s3fs'] = None\n"
        "from infergraph.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "fetch-model", "s3://bucket/iris", str(tmp_path)],
        env=clean_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "pip install 'infergraph[s3]'" in result.stderr
