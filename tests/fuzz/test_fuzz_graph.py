"""Fuzz a whole graph's REST face: the same mutated Seldon and V2 bodies as the component's,
sent to a graph (a transformer, a built-in A/B router, two models) served in process.

A graph decodes a request once, then passes messages between its nodes and encodes their
answers: paths the component alone never takes. The rule is the component's: a 2xx, or a
4xx that says why, never slow, and a good request still answered at the end.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson

from infergraph.transport.rest.graph import GraphRestApp
from tests.helpers.graph_fixtures import GraphHarness, deployment, unit

from .cases import SELDON, Paths, problem, rest_case, scope
from .mutate import case_count, dump_json, seed

CASE_SECONDS = 5.0
GRAPH = "fuzzed"
PATHS = Paths(
    "graph",
    ["/api/v1.0/predictions", "/api/v0.1/predictions", "/api/v1.0/feedback"],
    [f"/v2/models/{GRAPH}/infer", "/v2/models/infer", "/v2/models/t/infer"],
)
ECHO = '''
def _sendable(X):
    if isinstance(X, np.ndarray) and X.dtype == object and X.size:
        return np.array([v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                         for v in X.ravel()], dtype=object).reshape(X.shape)
    return X


class Echo:
    """Answers with what it was given (bytes as text: an ndarray answer cannot carry them)."""

    def __init__(self, node):
        self.node = node

    def transform_input(self, X, names):
        return _sendable(X)

    def predict(self, X, names):
        return _sendable(X)

    def send_feedback(self, X, names, reward, truth, routing=None):
        return None
'''


async def test_fuzz_graph_bodies(tmp_path: Path) -> None:
    run_seed, cases = seed(), max(1, case_count() // 4)
    graph = unit(
        "t",
        "TRANSFORMER",
        unit(
            "r",
            "ROUTER",
            unit("a", "MODEL", cls="Echo"),
            unit("b", "MODEL", cls="Echo"),
            implementation="RANDOM_ABTEST",
            params={"ratioA": 0.5},
        ),
        cls="Echo",
    )
    failures: list[str] = []
    async with GraphHarness(tmp_path) as harness:
        dataplane, _ = harness.dataplane(deployment(graph, name=GRAPH), extra=ECHO)
        app = GraphRestApp(dataplane, max_body_size=1 << 20)
        await dataplane.load()
        try:
            for index in range(cases):
                path, headers, body = rest_case(run_seed, index, PATHS)
                started = time.monotonic()
                status, _, out = await asyncio.wait_for(
                    app.respond(scope(path, headers), body), CASE_SECONDS * 4
                )
                wrong = problem(path, status, out)
                seconds = time.monotonic() - started
                if wrong is None and seconds > CASE_SECONDS:
                    wrong = f"took {seconds:.1f} s"
                if wrong is not None:
                    failures.append(
                        f"seed {run_seed} graph #{index} {path} {body[:200]!r}: {wrong}"
                    )
            good = dump_json(SELDON[0])
            json_type = [(b"content-type", b"application/json")]
            status, _, out = await app.respond(scope(PATHS.seldon[0], json_type), good)
        finally:
            await dataplane.close()
    assert not failures, f"{len(failures)} of {cases} cases failed:\n" + "\n".join(failures[:10])
    assert status == 200, out
    assert orjson.loads(out)["data"]["ndarray"] == SELDON[0]["data"]["ndarray"]
