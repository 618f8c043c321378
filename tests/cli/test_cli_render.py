"""``infergraph render``: every example renders, byte-identical on repeat; bad files exit
non-zero with the field named and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infergraph.cli.main import main

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted(ROOT.glob("examples/*/deployment.yaml"))
FIXTURES = Path(__file__).parents[1] / "fixtures" / "kube"
INVALID = Path(__file__).parents[1] / "manifests" / "invalid"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
@pytest.mark.parametrize("ingress", ["none", "istio", "gateway-api"])
def test_examples_render_the_same_bytes_twice(
    path: Path, ingress: str, capsys: pytest.CaptureFixture[str]
) -> None:
    outputs = []
    for _ in range(2):
        assert main(["render", str(path), "--ingress", ingress, "--namespace", "models"]) == 0
        captured = capsys.readouterr()
        assert captured.err == ""
        outputs.append(captured.out)
    assert outputs[0] == outputs[1]
    documents = list(yaml.safe_load_all(outputs[0]))
    assert {d["metadata"]["namespace"] for d in documents} == {"models"}
    assert "Deployment" in {d["kind"] for d in documents}


def test_image_prefix_names_the_runtime_image(capsys: pytest.CaptureFixture[str]) -> None:
    file = str(FIXTURES / "sklearn-model-uri.yaml")
    assert main(["render", file, "--image-prefix", "ghcr.io/acme/"]) == 0
    assert "image: ghcr.io/acme/infergraph:" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        pytest.param(
            FIXTURES / "bad-container-name.yaml",
            "bad-container-name.yaml:12: spec.predictors[0].componentSpecs[0].spec.containers[0]"
            ".name: container name 'My_Model' is not a valid Kubernetes name",
            id="kubernetes-name",
        ),
        pytest.param(
            FIXTURES / "triton-no-image.yaml",
            "triton-no-image.yaml:12: spec.predictors[0].graph.implementation: infergraph has "
            "no runtime for TRITON_SERVER",
            id="no-runtime",
        ),
        pytest.param(INVALID / "bad-types.yaml", "bad-types.yaml:", id="types"),
        pytest.param(INVALID / "bad-rules.yaml", "bad-rules.yaml:", id="rules"),
    ],
)
def test_bad_files_exit_1_naming_the_field(
    file: Path, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", str(file)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert expected in captured.err
    assert "Traceback" not in captured.err


def test_unreadable_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(INVALID / "bad-yaml.yaml")]) == 2
    assert "YAML syntax error" in capsys.readouterr().err
    assert main(["render", str(FIXTURES / "missing.yaml")]) == 2


def test_stdin_and_a_real_process() -> None:
    source = (ROOT / "examples" / "bandit" / "deployment.yaml").read_text()
    run = subprocess.run(
        [sys.executable, "-m", "infergraph", "render", "-"],
        input=source,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("---\napiVersion: v1\n")


def test_help_shows_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["render", "--help"])
    assert "Example:\n  infergraph render" in capsys.readouterr().out
