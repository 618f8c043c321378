"""``infergraph validate --path/--image``: what ``infergraph serve`` would refuse on this
machine (a container with no MODEL_NAME from anywhere, a local modelUri that is not
there), each with its file, line and field path."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from infergraph.cli import validate as validate_cli

FIXTURES = Path(__file__).parents[1] / "fixtures" / "s2i"
MANIFESTS = Path(__file__).parents[1] / "manifests"
SINGLE, CHAIN = FIXTURES / "single.yaml", FIXTURES / "chain.yaml"
DOUBLER, ADDER = FIXTURES / "doubler", FIXTURES / "adder"
CONTAINERS = "spec.predictors[0].componentSpecs[0].spec.containers"


def run(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="infergraph")
    validate_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["validate", *map(str, argv)])
    return int(args.command(args))


@pytest.fixture
def empty(tmp_path: Path) -> Path:
    folder = tmp_path / "no-s2i"
    folder.mkdir()
    return folder


def test_without_path_or_image_the_cluster_manifest_is_valid(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(SINGLE) == 0
    assert capsys.readouterr().out == f"{SINGLE}: ok (1 deployment, 1 predictor, 1 node)\n"


@pytest.mark.parametrize(
    ("manifest", "args"),
    [
        pytest.param(SINGLE, ["--path", DOUBLER], id="path"),
        pytest.param(
            CHAIN, ["--image", f"acme/doubler:1.0={DOUBLER}", "--image", f"acme/adder={ADDER}"],
            id="two-images",
        ),
    ],
)  # fmt: skip
def test_every_container_gets_a_model_name(
    manifest: Path, args: list[str | Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(manifest, *args) == 0
    assert ": ok (" in capsys.readouterr().out


def test_a_container_without_model_name_is_reported_with_its_path(
    empty: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(SINGLE, "--path", empty) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{SINGLE}:14: {CONTAINERS}[0].env: node 'classifier': container 'classifier' (image "
        f"acme/doubler:1.0) has no env MODEL_NAME and {empty / '.s2i' / 'environment'} does "
        "not exist; infergraph serve runs the Python class MODEL_NAME names (Module or "
        "module.Class), as Seldon's s2i images do: set env MODEL_NAME on the container, put "
        f"MODEL_NAME=... in {empty / '.s2i' / 'environment'}, or point serve at the image's "
        "source folder with --image acme/doubler:1.0=DIR"
    ]


def test_an_unmapped_image_falls_back_to_path(
    empty: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(CHAIN, "--path", empty, "--image", f"acme/doubler={DOUBLER}") == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1  # "triple" has its own MODEL_NAME, "double" its folder's
    assert f"{CONTAINERS}[1].env: node 'add': container 'add' (image acme/adder:2.3)" in lines[0]


def test_an_environment_file_without_model_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".s2i").mkdir()
    (tmp_path / ".s2i" / "environment").write_text("SERVICE_TYPE=MODEL\n")
    assert run(SINGLE, "--path", tmp_path) == 1
    assert f"{tmp_path / '.s2i' / 'environment'} has none;" in capsys.readouterr().out


def test_a_malformed_environment_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / ".s2i").mkdir()
    (tmp_path / ".s2i" / "environment").write_text("# s2i\nMODEL_NAME Doubler\n")
    assert run(SINGLE, "--path", tmp_path) == 1
    out = capsys.readouterr().out
    assert f"{CONTAINERS}[0].env: node 'classifier': {tmp_path}/.s2i/environment:2:" in out
    assert "'MODEL_NAME Doubler' is not a KEY=VALUE line" in out


def test_built_ins_need_no_model_name(empty: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = MANIFESTS / "seldon-epsilon-greedy.yaml"
    assert run(manifest, "--path", empty) == 1
    lines = capsys.readouterr().out.splitlines()
    # the three models are reported, the built-in router is not
    assert [line.split(": ")[1] for line in lines] == [f"{CONTAINERS}[{i}].env" for i in range(3)]


SKLEARN = """\
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata: {{name: iris}}
spec:
  predictors:
  - name: default
    graph:
      name: clf
      implementation: SKLEARN_SERVER
      modelUri: {uri}
"""


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        pytest.param("models/missing", "is a local path, and there is no file", id="path"),
        pytest.param("file:///no/such/model", "no file or folder at /no/such/model", id="file"),
        pytest.param("pvc://claim/model", "names a Kubernetes PersistentVolumeClaim", id="pvc"),
    ],
)
def test_a_local_model_uri_must_exist(
    tmp_path: Path, uri: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "iris.yaml"
    path.write_text(SKLEARN.format(uri=uri))
    assert run(path, "--path", tmp_path) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{path}:10: spec.predictors[0].graph.modelUri: node 'clf': ")
    assert words in line


@pytest.mark.parametrize(
    "uri", [pytest.param("s3://bucket/iris", id="remote"), pytest.param("EXISTING", id="local")]
)
def test_remote_and_existing_model_uris_pass(
    tmp_path: Path, uri: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "iris.yaml"
    path.write_text(SKLEARN.format(uri=str(tmp_path) if uri == "EXISTING" else uri))
    assert run(path, "--path", tmp_path) == 0, capsys.readouterr().out


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("acme/doubler", id="no-folder"),
        pytest.param("=models", id="no-image"),
        pytest.param("acme/doubler=/no/such/folder", id="missing-folder"),
    ],
)
def test_a_bad_image_option_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        run(SINGLE, "--image", value)
    assert caught.value.code == 2
    assert "--image" in capsys.readouterr().err


def test_an_image_given_twice_with_two_folders_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        run(SINGLE, "--image", f"acme/doubler={DOUBLER}", "--image", f"acme/doubler={ADDER}")
    assert "given twice" in capsys.readouterr().err
