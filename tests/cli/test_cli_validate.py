"""``infergraph validate``: output lines and exit status (0 valid, 1 invalid, 2 unreadable)."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import pytest

from infergraph.cli import validate as validate_cli

MANIFESTS = Path(__file__).parents[1] / "manifests"
INVALID = MANIFESTS / "invalid"


def run(*argv: str | Path) -> int:
    parser = argparse.ArgumentParser(prog="infergraph")
    validate_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["validate", *map(str, argv)])
    return int(args.command(args))


@pytest.mark.parametrize(
    ("name", "summary"),
    [
        pytest.param("seldon-abtest", "1 deployment, 1 predictor, 3 nodes", id="abtest"),
        pytest.param("multi-document", "2 deployments, 2 predictors, 2 nodes", id="multi-doc"),
        pytest.param("seldon-combiner", "1 deployment, 2 predictors, 6 nodes", id="combiner"),
    ],
)
def test_valid_file_prints_ok_and_exits_0(
    name: str, summary: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = MANIFESTS / f"{name}.yaml"
    assert run(path) == 0
    assert capsys.readouterr().out == f"{path}: ok ({summary})\n"


def test_every_valid_manifest_passes(capsys: pytest.CaptureFixture[str]) -> None:
    paths = sorted(MANIFESTS.glob("*.yaml"))
    assert run(*paths) == 0
    assert capsys.readouterr().out.count(": ok (") == len(paths)


def test_invalid_file_prints_every_problem_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    path = INVALID / "bad-types.yaml"
    assert run(path) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}:16: spec.predictors[0].graph.type: 'MODLE' is not one of UNKNOWN_TYPE, "
        "ROUTER, COMBINER, MODEL, TRANSFORMER, OUTPUT_TRANSFORMER; did you mean 'MODEL'?",
        f"{path}:17: spec.predictors[0].graph.modelURI: unknown field 'modelURI'; "
        "did you mean 'modelUri'?",
        f"{path}:20: spec.predictors[0].graph.parameters[0].value: expected a string, "
        'got 0.5; quote it in YAML: "0.5"',
    ]


def test_rule_problems_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    path = INVALID / "bad-rules.yaml"
    assert run(path) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0:2] for line in lines] == [
        [f"{path}:7", "spec.predictors"],
        [f"{path}:10", "spec.predictors[0].graph"],
        [f"{path}:14", "spec.predictors[1].graph.modelUri"],
    ]
    assert "node 'clf' has no container named 'clf' in componentSpecs" in lines[1]


def test_wrong_kind_exits_1_unless_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    path = INVALID / "wrong-kind.yaml"
    assert run(path) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{path}:3: kind: document 0 is a Service (v1), not a SeldonDeployment")
    assert run("--skip-other-kinds", path) == 1
    assert capsys.readouterr().out == f"{path}: no SeldonDeployment or GraphDeployment found\n"


def test_yaml_syntax_error_exits_2_with_line_and_column(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = INVALID / "bad-yaml.yaml"
    assert run(path) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{path}:5:8: YAML syntax error: mapping values are not allowed")


def test_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    assert run(missing) == 2
    assert capsys.readouterr().err == f"{missing}: no such file\n"


def test_exit_status_is_the_worst_file(capsys: pytest.CaptureFixture[str]) -> None:
    valid, invalid = MANIFESTS / "seldon-abtest.yaml", INVALID / "bad-rules.yaml"
    assert run(valid, invalid) == 1
    assert run(invalid, INVALID / "bad-yaml.yaml", valid) == 2
    out = capsys.readouterr().out
    assert out.count(f"{valid}: ok") == 2


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    text = (MANIFESTS / "seldon-abtest.yaml").read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert run("-") == 0
    assert capsys.readouterr().out == "-: ok (1 deployment, 1 predictor, 3 nodes)\n"


@pytest.mark.parametrize(
    ("target", "status"),
    [
        pytest.param(INVALID / "bad-yaml.yaml", 2, id="bad-yaml"),
        pytest.param(INVALID / "missing.yaml", 2, id="missing-file"),
        pytest.param(INVALID / "wrong-kind.yaml", 1, id="wrong-kind"),
        pytest.param(INVALID, 2, id="directory"),
    ],
)
def test_no_traceback_in_a_real_process(target: Path, status: int) -> None:
    code = (
        "import argparse, sys\n"
        "from infergraph.cli import validate\n"
        "p = argparse.ArgumentParser(prog='infergraph')\n"
        "validate.add_parser(p.add_subparsers())\n"
        "a = p.parse_args(sys.argv[1:])\n"
        "sys.exit(a.command(a))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "validate", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert str(target) in done.stderr + done.stdout
