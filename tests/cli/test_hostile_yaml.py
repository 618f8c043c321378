"""Hostile deployment YAML ends in a one-line message naming the problem: never a traceback,
never a hang. ``infergraph validate`` and ``serve`` run as real processes; the loader's
functions are checked in-process for every case."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from infergraph.graph.spec import SpecError, load_deployments, read_documents
from tests.helpers.procs import clean_env

BASE = """\
apiVersion: machinelearning.seldon.io/v1
kind: SeldonDeployment
metadata:
  name: iris
spec:
  predictors:
    - name: default
      graph:
        name: classifier
        implementation: SKLEARN_SERVER
        modelUri: gs://seldon-models/sklearn/iris
"""


def _alias_bomb() -> str:
    """About 600 bytes: 8 levels of 9 aliases each, 9**9 nodes once expanded."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 8):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    lines.append(f"a8: [{', '.join(['*a7'] * 9)}]")
    return "\n".join(lines) + "\n"


def _deep(levels: int) -> str:
    return BASE + "status: " + "[" * levels + "]" * levels + "\n"


def _renamed(value: str) -> str:
    return BASE.replace("name: iris", f"name: {value}")


# (YAML text, words the message must hold)
CASES = {
    "kind-is-a-mapping": (
        BASE.replace("kind: SeldonDeployment", "kind: {a: 1}"),
        "kind is a mapping; expected SeldonDeployment",
    ),
    "int-tag-not-a-number": (_renamed("!!int x"), "4:9: YAML error: 'x' is not a valid !!int"),
    "float-tag-not-a-number": (
        _renamed("!!float abc"),
        "4:9: YAML error: 'abc' is not a valid !!float",
    ),
    "timestamp-tag-bad-month": (
        _renamed("!!timestamp 2001-13-45"),
        "'2001-13-45' is not a valid !!timestamp (month must be in 1..12)",
    ),
    "plain-date-bad-day": (
        BASE.replace("  name: iris\n", "  name: iris\n  labels: {built: 2024-02-31}\n"),
        "'2024-02-31' is not a valid !!timestamp",
    ),
    "5000-digit-integer": (
        _renamed("9" * 5000),
        "an integer of 5000 digits is too long (at most 4300)",
    ),
    "hexadecimal-of-5000-digits": (
        _renamed("0x" + "f" * 5000),
        "an integer of more than 4300 digits is too long",
    ),  # found by tests/fuzz: a ValueError formatting it in a problem's message
    "alias-bomb": (
        _alias_bomb(),
        "YAML document 0 expands to more than 100,000 YAML nodes",
    ),
    "deep-nesting": (_deep(400), "YAML document 0 nests more than 200 levels deep"),
}
IDS = list(CASES)


@pytest.mark.timeout(60)  # the alias bomb ran for minutes before
@pytest.mark.parametrize("case", IDS)
def test_loader_raises_spec_errors_only(case: str) -> None:
    text, words = CASES[case]
    started = time.monotonic()
    for load in (read_documents, load_deployments):
        with pytest.raises(SpecError) as caught:
            load(text)
        assert words in str(caught.value)
    assert time.monotonic() - started < 5


def test_yaml_that_uses_aliases_modestly_still_loads() -> None:
    text = BASE.replace("  name: iris\n", "  name: iris\n  annotations: &notes {owner: ml}\n")
    text = text.replace("spec:\n", "spec:\n  annotations: *notes\n")
    (deployment,) = load_deployments(text)
    assert deployment.spec.annotations == deployment.metadata.annotations == {"owner": "ml"}


@pytest.fixture(scope="module")
def hostile_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    files = {}
    for case, (text, _) in CASES.items():
        files[case] = folder / f"{case}.yaml"
        files[case].write_text(text)
    return files


def _run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infergraph", *map(str, args)],
        cwd=cwd,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_validate_names_each_problem_in_one_line(hostile_files: dict[str, Path]) -> None:
    # one process for every file: each file's answer is one line, naming the file
    folder = next(iter(hostile_files.values())).parent
    done = _run("validate", *hostile_files.values(), cwd=folder)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    for case, path in hostile_files.items():
        lines = [line for line in output.splitlines() if line.startswith(f"{path}:")]
        assert len(lines) == 1, (case, output)
        assert CASES[case][1] in lines[0], (case, lines[0])


@pytest.mark.slow
@pytest.mark.parametrize("case", ["int-tag-not-a-number", "alias-bomb"])
def test_serve_refuses_with_a_message(hostile_files: dict[str, Path], case: str) -> None:
    path = hostile_files[case]
    done = _run("serve", path, "--http-port", "0", "--grpc-port", "0", cwd=path.parent)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    (line,) = [line for line in done.stderr.splitlines() if line.strip()]
    assert line.startswith(f"infergraph serve: {path}:")
    assert CASES[case][1] in line


def _chain(depth: int) -> str:
    """A graph of ``depth`` nodes, each the only child of the one before."""
    lines = [BASE.rstrip("\n")]
    for level in range(1, depth):
        indent = "  " * (level * 2 + 2)
        lines.append(f"{indent}children:")
        lines.append(f"{indent}  - name: node-{level}")
        lines.append(f"{indent}    implementation: SKLEARN_SERVER")
        lines.append(f"{indent}    modelUri: gs://seldon-models/sklearn/iris")
    return "\n".join(lines) + "\n"


def test_deep_graph_loads_or_is_refused_by_depth() -> None:
    (deployment,) = load_deployments(_chain(90))  # defaulting copies the whole graph
    assert deployment.spec.predictors[0].graph.children[0].name == "node-1"
    with pytest.raises(SpecError, match="nests more than 200 levels deep"):
        load_deployments(_chain(200))  # was a RecursionError while defaulting
