"""Helpers for graph tests: write a manifest and a module of Seldon-style node classes into
a folder, build the graph's data plane in process, and talk to it through the real REST app.

A manifest is built from :func:`unit` trees: a node with ``cls`` runs that class of the
generated module (a container with ``MODEL_NAME`` is added for it, and the parameter
``node`` tells the object its own name); a node with ``implementation`` runs a built-in.
Every harness imports its own uniquely named module, so tests never share class state, and
``sys.path``/``sys.modules`` are restored afterwards.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import httpx
import yaml

from infergraph.graph.spec import load_deployments
from infergraph.runtime.graph_dataplane import GraphDataPlane
from infergraph.serving.graph_server import build_dataplane
from infergraph.settings import GraphSettings
from infergraph.transport.rest.graph import GraphRestApp
from tests.helpers.procs import Sample, metric_sum, parse_metrics

__all__ = [
    "NODES_SOURCE",
    "GraphHarness",
    "Served",
    "deployment",
    "predictor",
    "render",
    "unit",
    "write_graph",
]

# The node classes every harness module holds. Each records its calls in CALLS, in order,
# as (node, method); DETAILS keeps what a call saw (meta, reward, routing, ...).
NODES_SOURCE = '''
import asyncio
import threading

import numpy as np

from infergraph.errors import MicroserviceError

CALLS = []
DETAILS = []
_LOCK = threading.Lock()
BARRIERS = {}


def record(node, method, detail=None):
    with _LOCK:
        CALLS.append((node, method))
        DETAILS.append((node, method, detail))


def calls(method=None):
    return [n for n, m in CALLS if method is None or m == method]


class Model:
    """MODEL: X + add (a chain shows as a sum); takes feedback."""

    def __init__(self, node, add=0.0):
        self.node, self.add = node, add

    def predict(self, X, names, meta=None):
        record(self.node, "predict", meta)
        return np.asarray(X, dtype=float) + self.add

    def send_feedback(self, X, names, reward, truth, routing=None):
        record(self.node, "send_feedback", {"reward": reward, "routing": routing})


class Tagged(Model):
    """A MODEL adding tags to its answer."""

    def tags(self):
        return {self.node: True, "last": self.node}


class Transformer:
    """TRANSFORMER: transform_input is X * 10 + add."""

    def __init__(self, node, add=0.0):
        self.node, self.add = node, add

    def transform_input(self, X, names):
        record(self.node, "transform_input")
        return np.asarray(X, dtype=float) * 10 + self.add


class OutputTransformer:
    """OUTPUT_TRANSFORMER: transform_output is -X; transform_input must not be called."""

    def __init__(self, node):
        self.node = node

    def transform_input(self, X, names):
        record(self.node, "transform_input")
        return np.asarray(X, dtype=float) * 1000

    def transform_output(self, X, names):
        record(self.node, "transform_output")
        return -np.asarray(X, dtype=float)


class InOut:
    """For methods lists: transform_input is X + 1, transform_output X * 2."""

    def __init__(self, node):
        self.node = node

    def transform_input(self, X, names):
        record(self.node, "transform_input")
        return np.asarray(X, dtype=float) + 1

    def transform_output(self, X, names):
        record(self.node, "transform_output")
        return np.asarray(X, dtype=float) * 2


class Router:
    """ROUTER answering ``choice``; takes feedback."""

    def __init__(self, node, choice=0):
        self.node, self.choice = node, choice

    def route(self, X, names):
        record(self.node, "route")
        return self.choice

    def send_feedback(self, X, names, reward, truth, routing=None):
        record(self.node, "send_feedback", {"reward": reward, "routing": routing})


class RawRouter:
    """ROUTER answering a whole SeldonMessage: ndarray [[N]] or [N], tensor, or a bare list."""

    def __init__(self, node, choice=0, form="nested"):
        self.node, self.choice, self.form = node, choice, form

    def route_raw(self, msg):
        record(self.node, "route")
        n = self.choice
        if self.form == "nested":
            return {"data": {"ndarray": [[n]]}}
        if self.form == "flat":
            return {"data": {"ndarray": [n]}}
        if self.form == "tensor":
            return {"data": {"tensor": {"shape": [1, 1], "values": [n]}}}
        return {"data": {"ndarray": []}}


class Combiner:
    """COMBINER: the element-wise sum of the children's outputs."""

    def __init__(self, node):
        self.node = node

    def aggregate(self, Xs, names_list):
        record(self.node, "aggregate", len(Xs))
        return np.sum([np.asarray(x, dtype=float) for x in Xs], axis=0)


class Meeting:
    """A MODEL whose predict waits until ``parties`` of its kind are inside predict at
    once: it only answers when its siblings are called concurrently."""

    def __init__(self, node, add=0.0, parties=2):
        self.node, self.add, self.parties = node, add, parties

    async def predict(self, X, names):
        record(self.node, "predict")
        barrier = BARRIERS.setdefault(self.parties, asyncio.Barrier(self.parties))
        async with asyncio.timeout(5):
            await barrier.wait()
        return np.asarray(X, dtype=float) + self.add


class Failing:
    """A MODEL that raises: MicroserviceError(status) when status > 0, else RuntimeError."""

    def __init__(self, node, status=0):
        self.node, self.status = node, status

    def predict(self, X, names):
        record(self.node, "predict")
        if self.status:
            raise MicroserviceError("bad input for this model", status_code=self.status)
        raise RuntimeError("boom")


class Slow:
    """An async MODEL taking ``seconds``."""

    def __init__(self, node, seconds=1.0):
        self.node, self.seconds = node, seconds

    async def predict(self, X, names):
        record(self.node, "predict")
        await asyncio.sleep(self.seconds)
        return X


class Described(Model):
    """A MODEL with metadata (inputs and outputs), for graph metadata."""

    def __init__(self, node, add=0.0, width=2):
        super().__init__(node, add)
        self.width = width

    def init_metadata(self):
        return {
            "name": self.node,
            "versions": ["v1"],
            "platform": "test",
            "inputs": [{"name": f"{self.node}-in", "datatype": "FP64", "shape": [self.width]}],
            "outputs": [{"name": f"{self.node}-out", "datatype": "FP64", "shape": [1]}],
        }


class DescribedCombiner(Combiner):
    """A COMBINER with metadata: the graph's outputs are its own."""

    def init_metadata(self):
        return {"outputs": [{"name": f"{self.node}-out", "datatype": "FP64", "shape": [1]}]}


class Counted(Model):
    """A MODEL recording each load()."""

    def load(self):
        record(self.node, "load")


class Unloaded(Model):
    """A MODEL whose load() waits until the test releases it."""

    def __init__(self, node, add=0.0):
        super().__init__(node, add)
        self.release = None

    async def load(self):
        self.release = asyncio.Event()
        await self.release.wait()


class FeedbackTransformer(Transformer):
    """A transformer that also has send_feedback: called only with method SEND_FEEDBACK."""

    def send_feedback(self, X, names, reward, truth, routing=None):
        record(self.node, "send_feedback", {"reward": reward, "routing": routing})


GATES = {}


class Gated(Model):
    """A MODEL whose predict waits until the test opens its gate: ``gate(node).set()``."""

    async def predict(self, X, names):
        record(self.node, "predict")
        await gate(self.node).wait()
        return np.asarray(X, dtype=float) + self.add


def gate(node):
    return GATES.setdefault(node, asyncio.Event())
'''


def _param_type(value: Any) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT"
    if isinstance(value, float):
        return "FLOAT"
    return "STRING"


def _parameters(params: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for name, value in params.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out.append({"name": name, "value": text, "type": _param_type(value)})
    return out


def unit(
    name: str,
    type: str | None = None,
    *children: dict[str, Any],
    cls: str | None = None,
    implementation: str | None = None,
    methods: list[str] | None = None,
    params: dict[str, Any] | None = None,
    logger: dict[str, Any] | None = None,
    image: str | None = None,
) -> dict[str, Any]:
    """One graph node. ``cls`` names a class of the harness module (it gets a container,
    with ``image`` or ``test/<name>:0.1``, and the parameter ``node``); ``implementation``
    a built-in."""
    node: dict[str, Any] = {"name": name}
    if type is not None:
        node["type"] = type
    if implementation is not None:
        node["implementation"] = implementation
    if methods is not None:
        node["methods"] = methods
    given = dict(params or {})
    if cls is not None:
        given = {"node": name, **given}
        node["_class"] = cls
        node["_image"] = image or f"test/{name}:0.1"
    if given:
        node["parameters"] = _parameters(given)
    if logger is not None:
        node["logger"] = logger
    node["children"] = list(children)
    return node


def predictor(
    graph: dict[str, Any],
    name: str = "default",
    *,
    traffic: int | None = None,
    shadow: bool = False,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "graph": graph}
    if traffic is not None:
        out["traffic"] = traffic
    if shadow:
        out["shadow"] = True
    if annotations:
        out["annotations"] = annotations
    return out


def deployment(
    *predictors_or_graph: dict[str, Any],
    name: str = "g",
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A SeldonDeployment with the given predictors (or a single graph as ``default``)."""
    predictors = [
        p if "graph" in p else predictor(p, f"default{i or ''}")
        for i, p in enumerate(predictors_or_graph)
    ]
    spec: dict[str, Any] = {"predictors": predictors}
    if annotations:
        spec["annotations"] = annotations
    return {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": {"name": name},
        "spec": spec,
    }


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("children", ()):
        yield from _walk(child)


def render(manifest: dict[str, Any], module: str) -> dict[str, Any]:
    """The manifest with containers (``MODEL_NAME = module.Class``) for the class nodes."""
    out = yaml.safe_load(yaml.safe_dump(manifest))
    for pred in out["spec"]["predictors"]:
        containers = []
        for node in _walk(pred["graph"]):
            cls = node.pop("_class", None)
            image = node.pop("_image", None)
            if cls is not None:
                containers.append(
                    {
                        "name": node["name"],
                        "image": image,
                        "env": [{"name": "MODEL_NAME", "value": f"{module}.{cls}"}],
                    }
                )
        if containers:
            pred["componentSpecs"] = [{"spec": {"containers": containers}}]
    return out


def write_graph(
    folder: Path, manifest: dict[str, Any], *, module: str | None = None, extra: str = ""
) -> tuple[Path, str]:
    """Write the node module and the manifest YAML into ``folder``: (YAML path, module)."""
    module = module or f"ig_nodes_{uuid.uuid4().hex[:12]}"
    (folder / f"{module}.py").write_text(NODES_SOURCE + textwrap.dedent(extra))
    path = folder / f"{module}.yaml"
    path.write_text(yaml.safe_dump(render(manifest, module), sort_keys=False))
    return path, module


class Served:
    """One graph served in process: its data plane, REST client and node module."""

    def __init__(self, dataplane: GraphDataPlane, client: httpx.AsyncClient, module: str):
        self.dp = dataplane
        self.client = client
        self.module_name = module

    @property
    def module(self) -> ModuleType:
        return sys.modules[self.module_name]

    @property
    def calls(self) -> list[tuple[str, str]]:
        return list(self.module.CALLS)

    def called(self, method: str | None = None) -> list[str]:
        """Node names in call order, for one method or all."""
        return list(self.module.calls(method))

    def details(self, method: str) -> list[tuple[str, Any]]:
        return [(n, d) for n, m, d in self.module.DETAILS if m == method]

    def reset(self) -> None:
        self.module.CALLS.clear()
        self.module.DETAILS.clear()

    def user(self, node: str, predictor: str | None = None) -> Any:
        """The object behind a node."""
        for pred in self.dp.plan.predictors:
            if predictor in (None, pred.name) and node in pred.nodes:
                return pred.nodes[node].client.component.user  # type: ignore[attr-defined]
        raise KeyError(node)

    async def predict(
        self, data: Any = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """POST a prediction: ``data`` is a SeldonMessage dict or an ndarray (default
        ``[[1.0, 2.0]]``)."""
        body = data if isinstance(data, dict) else {"data": {"ndarray": data or [[1.0, 2.0]]}}
        return await self.client.post("/api/v1.0/predictions", json=body, headers=headers)

    async def ok(self, data: Any = None, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """A prediction that must succeed: its JSON body."""
        response = await self.predict(data, headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def feedback(
        self, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return await self.client.post("/api/v1.0/feedback", json=body, headers=headers)

    async def metrics(self) -> list[Sample]:
        response = await self.client.get("/metrics")
        assert response.status_code == 200, response.text
        return parse_metrics(response.text)

    async def metric(self, name: str, **labels: str) -> float:
        return metric_sum(await self.metrics(), name, **labels)


class GraphHarness:
    """Builds graphs in ``folder``; ``async with`` closes them and forgets their modules."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._served: list[Served] = []
        self._modules: list[str] = []
        self._path_before = list(sys.path)

    async def __aenter__(self) -> GraphHarness:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for served in self._served:
            await served.client.aclose()
            await served.dp.close()
        for module in self._modules:
            sys.modules.pop(module, None)
        sys.path[:] = self._path_before

    def dataplane(
        self, manifest: dict[str, Any], *, seed: int | None = 0, extra: str = "", **settings: Any
    ) -> tuple[GraphDataPlane, str]:
        """The data plane of ``manifest`` (not loaded), and its module's name."""
        path, module = write_graph(self.folder, manifest, extra=extra)
        self._modules.append(module)
        graph_settings = GraphSettings(path=str(self.folder), seed=seed, **settings)
        return build_dataplane(load_deployments(path)[0], graph_settings), module

    async def serve(
        self,
        manifest: dict[str, Any],
        *,
        seed: int | None = 0,
        load: bool = True,
        extra: str = "",
        **settings: Any,
    ) -> Served:
        """The graph of ``manifest``, loaded (unless ``load=False``), with a REST client."""
        dp, module = self.dataplane(manifest, seed=seed, extra=extra, **settings)
        app = GraphRestApp(dp, max_body_size=dp_max_body(settings))
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://g")
        served = Served(dp, client, module)
        self._served.append(served)
        if load:
            await dp.load()
        return served


def dp_max_body(settings: dict[str, Any]) -> int:
    return int(settings.get("max_message_size", GraphSettings().max_message_size))
