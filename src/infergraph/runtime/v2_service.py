"""The Open Inference Protocol (V2) server side, shared by REST and gRPC.

A :class:`V2Service` holds the models one server offers (a component is one model; a
graph is the model named after its deployment, and each node is a model with metadata),
finds them by name and version, and answers health, metadata and inference in the
protocol's terms. Unknown models and versions are the client's mistake (400, as Triton
answers); the transports choose only how to put the answers on the wire.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from infergraph._version import __version__
from infergraph.components.dataplane import ComponentDataPlane
from infergraph.errors import BadRequest, NotImplementedByComponent, NotReady
from infergraph.protocol.message import DataKind, Message, Meta
from infergraph.protocol.seldon_json import decode_aggregate, decode_feedback
from infergraph.protocol.v2_hop import read_call, write_answer
from infergraph.protocol.v2_message import as_v2
from infergraph.protocol.v2_types import InferenceRequest, InferenceResponse
from infergraph.runtime.graph_dataplane import GraphDataPlane

__all__ = [
    "EXTENSIONS",
    "SERVER_NAME",
    "V2Model",
    "V2Service",
    "component_service",
    "graph_service",
    "v2_metadata",
]

SERVER_NAME = "infergraph"
EXTENSIONS = ("binary_tensor_data",)

Infer = Callable[[Message, dict[str, str]], Awaitable[Message]]
"""Run a V2 message through a model; the dict holds the request's headers (lower case)."""


class UnknownModel(BadRequest):
    """A V2 request names a model or version this server does not have."""


def v2_metadata(name: str, seldon: dict[str, Any], platform: str = "") -> dict[str, Any]:
    """V2 model metadata from Seldon-style metadata: tensors given as name/datatype/shape."""

    def tensors(items: Any) -> list[dict[str, Any]]:
        return [
            {"name": t["name"], "datatype": t["datatype"], "shape": list(t["shape"])}
            for t in items or ()
            if isinstance(t, dict) and {"name", "datatype", "shape"} <= t.keys()
        ]

    return {
        "name": name,
        "versions": list(seldon.get("versions") or []),
        "platform": seldon.get("platform") or platform,
        "inputs": tensors(seldon.get("inputs")),
        "outputs": tensors(seldon.get("outputs")),
    }


@dataclass(slots=True)
class V2Model:
    """One model a V2 server offers. ``infer`` is None for metadata-only models (nodes)."""

    name: str
    metadata: Callable[[], dict[str, Any]]
    ready: Callable[[], bool]
    infer: Infer | None = None

    def raw_input(self) -> tuple[str, str, Sequence[int]] | None:
        """The single declared input (for Triton's raw binary requests), if there is one."""
        inputs = self.metadata().get("inputs") or []
        if len(inputs) != 1:
            return None
        item = inputs[0]
        return item["name"], item["datatype"], item["shape"]


class V2Service:
    """The models of one server and the protocol's answers about them."""

    def __init__(self, models: Sequence[V2Model], ready: Callable[[], bool]) -> None:
        self.models: dict[str, V2Model] = {}
        for model in models:
            self.models.setdefault(model.name, model)  # the first one named wins
        self._ready = ready

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self._ready()

    @staticmethod
    def server_metadata() -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": __version__, "extensions": list(EXTENSIONS)}

    def model(self, name: str, version: str = "") -> V2Model:
        model = self.models.get(name)
        if model is None:
            known = ", ".join(repr(n) for n in self.models) or "none"
            raise UnknownModel(f"Model '{name}' is not found on this server (it serves {known})")
        if version:
            versions = model.metadata().get("versions") or []
            if versions and version not in versions:
                raise UnknownModel(
                    f"Model '{name}' has no version '{version}' (it has {', '.join(versions)})"
                )
        return model

    def model_ready(self, name: str, version: str = "") -> bool:
        return self.model(name, version).ready()

    def model_metadata(self, name: str, version: str = "") -> dict[str, Any]:
        return self.model(name, version).metadata()

    def default_model(self) -> str:
        """The model Seldon's ``/v2/models/infer`` means: the first that runs inference."""
        for name, model in self.models.items():
            if model.infer is not None:
                return name
        raise UnknownModel("this server has no model that runs inference")

    async def infer(
        self,
        request: InferenceRequest,
        name: str,
        version: str = "",
        headers: dict[str, str] | None = None,
    ) -> InferenceResponse:
        """Run one inference; the response's outputs are all the model produced."""
        model = self.model(name, version)
        if model.infer is None:
            raise NotImplementedByComponent(
                f"Model '{name}' is a graph node: infer on the graph's model "
                f"({', '.join(repr(n) for n, m in self.models.items() if m.infer)})"
            )
        if not model.ready():
            raise NotReady(f"Model '{name}' is not ready yet")
        names = [tensor.name for tensor in request.inputs]
        headers = headers or {}
        puid = headers.get("seldon-puid") or request.id or ""
        message = Message(DataKind.V2, request, names, Meta(puid=puid))
        answer = await model.infer(message, headers)
        payload = as_v2(answer)
        return InferenceResponse(
            model_name=name,
            outputs=payload.inputs,
            model_version=version or None,
            id=request.id,
            parameters=payload.parameters,
        )


def component_service(dataplane: ComponentDataPlane) -> V2Service:
    """One component as a V2 server with one model, named after the component."""
    name = dataplane.name

    async def infer(message: Message, headers: dict[str, str]) -> Message:
        call = read_call(message.data)
        if call is None:
            return await dataplane.predict(message)
        method, inner = call  # a graph hop: a Seldon message in V2 tensors
        answer: Message
        if method == "aggregate":  # the JSON list of the combiner's inputs
            messages = decode_aggregate(inner.data)
            answer = await dataplane.aggregate(messages, "json", raw=inner.data)
        elif method == "send_feedback":  # Seldon's Feedback JSON
            answer = await dataplane.send_feedback(decode_feedback(inner.data), "json")
        else:
            answer = await getattr(dataplane, method)(inner)
        return Message(DataKind.V2, write_answer(answer), [], answer.meta)

    def ready() -> bool:
        return dataplane.ready

    model = V2Model(name, lambda: v2_metadata(name, dataplane.metadata()), ready, infer)
    return V2Service([model], ready)


def graph_service(dataplane: GraphDataPlane) -> V2Service:
    """A graph as a V2 server: the model named after the deployment runs the graph; each
    node of the (first live) predictor is a model with metadata."""
    name = dataplane.plan.name

    def graph_metadata() -> dict[str, Any]:
        meta = dataplane.metadata()
        edges = {"inputs": meta["graphinputs"], "outputs": meta["graphoutputs"]}
        return v2_metadata(name, edges, platform="infergraph_graph")

    async def infer(message: Message, headers: dict[str, str]) -> Message:
        response, _ = await dataplane.predict(message, dataplane.context(headers))
        return response

    def ready() -> bool:
        return dataplane.ready

    models = [V2Model(name, graph_metadata, ready, infer)]
    for predictor in dataplane.plan.predictors:
        models.extend(
            _node_model(node_name, node.client) for node_name, node in predictor.nodes.items()
        )
    return V2Service(models, ready)


def _node_model(name: str, client: Any) -> V2Model:
    """A graph node as a V2 model with metadata (inference goes through the graph)."""
    return V2Model(name, lambda: v2_metadata(name, client.metadata()), lambda: bool(client.ready))
