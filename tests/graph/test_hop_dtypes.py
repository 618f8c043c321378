"""Number types do not depend on where the nodes run: a graph answers the same JSON, and each
model gets an ``X`` of the same dtype, in one process, with ``--processes`` over gRPC (the
default hop) and with ``--processes`` over REST (``spec.transport: rest``).

In one process the answers are Seldon's REST answers (``np.array`` of the request, the
result's ``tolist()``, a returned list as it is); a hop must not change them, whatever the
message's size: ints stay ints, a list that mixes ints and floats stays mixed, meta tags and
``jsonData`` keep their integers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers.ports import HeldPorts
from tests.helpers.procs import clean_env, http_request, poll

pytestmark = pytest.mark.slow

NODES = """
import json

import numpy as np


def _dtype(X):
    if isinstance(X, np.ndarray):
        # a string's width is left out: Seldon JSON (the REST hop) does not carry it
        return "str" if X.dtype.kind == "U" else X.dtype.name
    return type(X).__name__


class First:
    \"\"\"A TRANSFORMER that passes its input on; its tags say what it got.\"\"\"

    def transform_input(self, X, names, meta=None):
        self.seen = _dtype(X)
        return X

    def tags(self):
        return {"first": self.seen, "count": 1}


class Echo:
    \"\"\"A MODEL that answers its input, or a list mixing types when the request's tags
    ask for one; its tags say what it got.\"\"\"

    def predict(self, X, names, meta=None):
        self.seen = _dtype(X)
        if (meta or {}).get("tags", {}).get("answer") == "list":
            return [[1, 2.5, int(np.asarray(X).size)]]
        return X

    def tags(self):
        return {"echo": getattr(self, "seen", None)}  # (called after send_feedback too)

    def send_feedback(self, features, feature_names, reward, truth, routing=None):
        # what the model got, kept where the test reads it (the folder is every node's cwd)
        seen = {"features": _dtype(features), "truth": _dtype(truth), "reward": _dtype(reward)}
        with open("feedback-seen.jsonl", "a") as out:
            out.write(json.dumps(seen) + "\\n")


class Sum:
    \"\"\"A COMBINER that adds its inputs up; its tags say what it got.\"\"\"

    def aggregate(self, Xs, names):
        self.seen = ",".join(_dtype(X) for X in Xs)
        return np.sum(Xs, axis=0)

    def tags(self):
        return {"sum": self.seen}
"""

MODES = [
    pytest.param("one-process", id="one-process"),
    pytest.param("grpc", id="processes-grpc"),
    pytest.param("rest", id="processes-rest"),
]


def _container(name: str, model: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": f"example/{name}:1",
        "env": [{"name": "MODEL_NAME", "value": model}],
    }


def chain() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """TRANSFORMER ``first`` -> MODEL ``echo``."""
    graph = {
        "name": "first",
        "type": "TRANSFORMER",
        "children": [{"name": "echo", "type": "MODEL"}],
    }
    return graph, [_container("first", "nodes.First"), _container("echo", "nodes.Echo")]


def combiner() -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """COMBINER ``sum`` over MODELs ``echo-a`` and ``echo-b``."""
    children = [{"name": name, "type": "MODEL"} for name in ("echo-a", "echo-b")]
    graph = {"name": "sum", "type": "COMBINER", "children": children}
    containers = [_container("sum", "nodes.Sum")]
    containers += [_container(child["name"], "nodes.Echo") for child in children]
    return graph, containers


GRAPHS = {"chain": chain, "combiner": combiner}


def deployment(mode: str, name: str) -> dict[str, Any]:
    graph, containers = GRAPHS[name]()
    predictor = {"name": "default", "componentSpecs": [{"spec": {"containers": containers}}]}
    spec: dict[str, Any] = {"predictors": [{**predictor, "graph": graph}]}
    if mode == "rest":
        spec["transport"] = "rest"
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": "dtypes"},
        "spec": spec,
    }


@contextlib.contextmanager
def serving(folder: Path, mode: str, graph: str) -> Iterator[int]:
    """``infergraph serve`` of ``graph`` in ``mode``; its REST port."""
    (folder / "nodes.py").write_text(NODES)
    (folder / "graph.yaml").write_text(yaml.safe_dump(deployment(mode, graph)))
    held = HeldPorts(2)
    http, grpc_port = held.ports
    args = ["serve", "graph.yaml", "--path", str(folder), "--host", "127.0.0.1"]
    args += ["--http-port", str(http), "--grpc-port", str(grpc_port)]
    if mode != "one-process":
        args.append("--processes")
    log = folder / f"serve-{time.monotonic_ns()}.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "infergraph", *args],
            cwd=folder,
            env=clean_env(),
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
        )

    def ready() -> bool:
        assert proc.poll() is None, f"exited {proc.returncode}:\n{log.read_text()}"
        return http_request(http, "GET", "/ready")[0] == 200

    try:
        poll(ready, timeout=30.0, what=f"ready; log:\n{log.read_text()[-3000:]}")
        yield http
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        held.close()


@pytest.fixture(scope="module", params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def chain_folder(mode: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp(f"chain-{mode}")


@pytest.fixture(scope="module")
def graph(mode: str, chain_folder: Path) -> Iterator[int]:
    with serving(chain_folder, mode, "chain") as port:
        yield port


@pytest.fixture(scope="module")
def combined(mode: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with serving(tmp_path_factory.mktemp(f"combiner-{mode}"), mode, "combiner") as port:
        yield port


def names(count: int) -> list[str]:
    return [f"t:{i}" for i in range(count)]


def ndarray(rows: list[list[Any]], dtype: str, tags: dict[str, Any] | None = None) -> Any:
    """A request of ``rows``, and its answer: the same rows, X of ``dtype`` at both nodes."""
    body: dict[str, Any] = {"data": {"ndarray": rows}}
    if tags:
        body["meta"] = {"tags": tags}
    answer = {"data": {"names": names(len(rows[0])), "ndarray": rows}}
    return body, answer, dtype


INTS_300 = [list(range(300))]

CASES = [
    pytest.param(*ndarray([[1, 2, 3]], "int64"), id="ints"),
    pytest.param(*ndarray(INTS_300, "int64"), id="ints-300"),
    pytest.param(*ndarray([[1.5, 2.0, -3.25]], "float64"), id="floats"),
    pytest.param(
        {"data": {"ndarray": [[1, 2.5]]}},
        {"data": {"names": names(2), "ndarray": [[1.0, 2.5]]}},
        "float64",
        id="ints-and-floats",
    ),
    pytest.param(*ndarray([[True, False]], "bool"), id="bools"),
    pytest.param(*ndarray([["a", "bc"]], "str"), id="strings"),
    pytest.param(
        {"data": {"ndarray": [["a", 1]]}},
        {"data": {"names": names(2), "ndarray": [["a", "1"]]}},
        "str",
        id="strings-and-ints",
    ),
    pytest.param(
        {"data": {"tensor": {"shape": [1, 3], "values": [1, 2, 3]}}},
        {"data": {"names": names(3), "tensor": {"shape": [1, 3], "values": [1, 2, 3]}}},
        "int64",
        id="tensor-of-ints",
    ),
    pytest.param(
        {"data": {"tensor": {"shape": [2], "values": [1.5, 2]}}},
        {"data": {"names": [], "tensor": {"shape": [2], "values": [1.5, 2.0]}}},
        "float64",
        id="tensor-of-floats",
    ),
    pytest.param(
        {"jsonData": {"n": 1, "f": 2.5, "l": [1, True, None, "s"]}},
        {"jsonData": {"n": 1, "f": 2.5, "l": [1, True, None, "s"]}},
        "dict",
        id="jsonData",
    ),
    pytest.param({"strData": "héllo"}, {"strData": "héllo"}, "str", id="strData"),
]


def canonical(value: Any) -> str:
    """JSON text that tells ``1`` from ``1.0`` (``==`` does not) and ignores key order."""
    return json.dumps(value, sort_keys=True)


def predict(port: int, body: Any) -> dict[str, Any]:
    status, _, data = http_request(port, "POST", "/api/v1.0/predictions", body)
    answer: dict[str, Any] = json.loads(data)
    assert status == 200, answer
    return answer


@pytest.mark.parametrize(("body", "expected", "dtype"), CASES)
def test_answers_and_dtypes_are_the_same_wherever_the_nodes_run(
    graph: int, body: Any, expected: dict[str, Any], dtype: str
) -> None:
    answer = predict(graph, body)
    meta = answer.pop("meta")
    assert canonical(answer) == canonical(expected)
    # each model got X as one process gives it; integer tags stay integers
    assert canonical(meta["tags"]) == canonical({"first": dtype, "echo": dtype, "count": 1})


@pytest.mark.parametrize(
    "rows", [pytest.param([[1, 2]], id="small"), pytest.param(INTS_300, id="300-elements")]
)
def test_a_list_the_model_returns_comes_back_as_it_is(graph: int, rows: list[list[int]]) -> None:
    answer = predict(graph, {"data": {"ndarray": rows}, "meta": {"tags": {"answer": "list"}}})
    assert canonical(answer["data"]) == canonical(
        {"names": names(3), "ndarray": [[1, 2.5, len(rows[0])]]}
    )


@pytest.mark.parametrize(
    ("rows", "dtype"),
    [
        pytest.param([[1, 2]], "int64", id="ints"),
        pytest.param(INTS_300, "int64", id="ints-300"),
        pytest.param([[0.5, 2.0]], "float64", id="floats"),
    ],
)
def test_a_combiner_gets_and_answers_the_same_numbers_wherever_it_runs(
    combined: int, rows: list[list[Any]], dtype: str
) -> None:
    answer = predict(combined, {"data": {"ndarray": rows}})
    doubled = [[2 * value for value in row] for row in rows]
    assert canonical(answer["data"]) == canonical(
        {"names": names(len(rows[0])), "ndarray": doubled}
    )
    assert canonical(answer["meta"]["tags"]) == canonical(
        {"echo": dtype, "sum": f"{dtype},{dtype}"}
    )


@pytest.mark.parametrize(
    ("rows", "dtype"),
    [
        pytest.param([[1, 2, 3]], "int64", id="ints"),
        pytest.param(INTS_300, "int64", id="ints-300"),
        pytest.param([[1.5, 2.0]], "float64", id="floats"),
    ],
)
def test_a_feedback_reaches_the_model_with_the_same_numbers_wherever_it_runs(
    graph: int, chain_folder: Path, rows: list[list[Any]], dtype: str
) -> None:
    seen = chain_folder / "feedback-seen.jsonl"
    seen.unlink(missing_ok=True)
    feedback = {
        "request": {"data": {"ndarray": rows}},
        "response": {"data": {"ndarray": rows}},
        "truth": {"data": {"ndarray": rows}},
        "reward": 1,
    }
    status, _, data = http_request(graph, "POST", "/api/v1.0/feedback", feedback)
    assert status == 200, data
    lines = poll(lambda: seen.exists() and seen.read_text().splitlines(), what="the feedback")
    assert [json.loads(line) for line in lines] == [
        {"features": dtype, "truth": dtype, "reward": "float"}
    ]
