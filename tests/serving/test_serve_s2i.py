"""``infergraph serve`` runs unchanged s2i manifests: a container that names only its image
gets MODEL_NAME from its source folder's ``.s2i/environment`` (``--path``, or ``--image``
per image), and a container's own env wins over the file. Real processes, real sockets."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.cli.test_cli_serve import run_to_exit, serving

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).parents[1] / "fixtures" / "s2i"
DOUBLER, ADDER = FIXTURES / "doubler", FIXTURES / "adder"
X = [[1.0, 2.0]]
PREDICT = {"data": {"ndarray": X}}


def curl_predict(port: int, path: str = "/api/v1.0/predictions") -> dict[str, object]:
    done = subprocess.run(
        [
            "curl", "-sS", "--fail-with-body", "--max-time", "10",
            "-H", "Content-Type: application/json", "-d", json.dumps(PREDICT),
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout, done.stderr)
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_path_folder_gives_model_name_to_a_container_without_env(tmp_path: Path) -> None:
    with serving(tmp_path, FIXTURES / "single.yaml", "--path", str(DOUBLER)) as server:
        answer = curl_predict(server.http)
    assert answer["data"] == {"names": ["t:0", "t:1"], "ndarray": [[2.0, 4.0]]}
    assert answer["meta"]["requestPath"] == {"classifier": "acme/doubler:1.0"}  # type: ignore[index]


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param([], id="in-process"),
        pytest.param(["--processes"], id="processes"),
    ],
)
def test_image_flags_map_two_images_to_two_folders(tmp_path: Path, extra: list[str]) -> None:
    args = ["--image", f"acme/doubler:1.0={DOUBLER}", "--image", f"acme/adder={ADDER}", *extra]
    with serving(tmp_path, FIXTURES / "chain.yaml", *args) as server:
        response = httpx.post(
            f"http://127.0.0.1:{server.http}/api/v1.0/predictions", json=PREDICT, timeout=10
        )
    assert response.status_code == 200, response.text
    body = response.json()
    # double (file: Doubler) -> add (untagged mapping: Adder) -> triple (own env: Tripler)
    assert body["data"]["ndarray"] == [[9.0, 15.0]]
    assert body["meta"]["requestPath"] == {
        "double": "acme/doubler:1.0",
        "add": "acme/adder:2.3",
        "triple": "acme/doubler:1.0",
    }


def test_container_without_model_name_is_refused_before_start(tmp_path: Path) -> None:
    empty = tmp_path / "no-s2i"
    empty.mkdir()
    result = run_to_exit(
        tmp_path, str(FIXTURES / "single.yaml"), "--path", str(empty),
        "--http-port", "0", "--grpc-port", "0",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert (
        "spec.predictors[0].componentSpecs[0].spec.containers[0].env: node 'classifier': "
        "container 'classifier' (image acme/doubler:1.0) has no env MODEL_NAME and "
        f"{empty / '.s2i' / 'environment'} does not exist"
    ) in result.stderr
    assert "--image acme/doubler:1.0=DIR" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_image_flag_that_matches_nothing_is_a_warning(tmp_path: Path) -> None:
    args = ["--path", str(DOUBLER), "--image", f"acme/dubler={ADDER}"]
    with serving(tmp_path, FIXTURES / "single.yaml", *args) as server:
        status, body = server.post("/api/v1.0/predictions", PREDICT)
        assert status == 200 and body["data"]["ndarray"] == [[2.0, 4.0]]
        assert "warning: --image acme/dubler matches no container" in server.stderr()


def test_image_flag_without_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = run_to_exit(tmp_path, str(FIXTURES / "single.yaml"), "--image", "acme/doubler")
    assert result.returncode == 2
    assert "expected IMAGE=DIR" in result.stderr
