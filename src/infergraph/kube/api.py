"""The few Kubernetes API calls infergraph makes, over httpx, sync and async.

No client library: the operator needs server-side apply, list by label, delete and one
subresource write, and ``describe``/``logs`` need get, list and pod logs. Each call is built
once (:func:`request`) and sent by :class:`Api` (the CLI) or :class:`AsyncApi` (the
operator), so both speak to the server the same way. Errors become :class:`ApiError` with the
server's own message (a ``Status`` object), never a traceback of the HTTP layer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "KINDS",
    "Api",
    "ApiError",
    "AsyncApi",
    "Call",
    "Kind",
    "kind_of",
    "request",
]

FIELD_MANAGER = "infergraph-operator"


@dataclass(frozen=True)
class Kind:
    """Where a kind lives in the API."""

    kind: str
    api_version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in (
        Kind("ConfigMap", "v1", "configmaps"),
        Kind("Service", "v1", "services"),
        Kind("Endpoints", "v1", "endpoints"),
        Kind("Pod", "v1", "pods"),
        Kind("Event", "v1", "events"),
        Kind("Namespace", "v1", "namespaces", namespaced=False),
        Kind("Deployment", "apps/v1", "deployments"),
        Kind("ReplicaSet", "apps/v1", "replicasets"),
        Kind("HorizontalPodAutoscaler", "autoscaling/v2", "horizontalpodautoscalers"),
        Kind("PodDisruptionBudget", "policy/v1", "poddisruptionbudgets"),
        Kind("ScaledObject", "keda.sh/v1alpha1", "scaledobjects"),
        Kind("VirtualService", "networking.istio.io/v1beta1", "virtualservices"),
        Kind("DestinationRule", "networking.istio.io/v1beta1", "destinationrules"),
        Kind("HTTPRoute", "gateway.networking.k8s.io/v1", "httproutes"),
        Kind("GraphDeployment", "infergraph.io/v1", "graphdeployments"),
        Kind("SeldonDeployment", "machinelearning.seldon.io/v1", "seldondeployments"),
    )
}


def kind_of(obj: Mapping[str, Any]) -> Kind:
    """The :class:`Kind` of ``obj``, at the apiVersion the object itself names."""
    known = KINDS[obj["kind"]]
    version = obj.get("apiVersion") or known.api_version
    return Kind(known.kind, version, known.plural, known.namespaced)


class ApiError(Exception):
    """The API server refused a call, or could not be reached."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason

    @property
    def not_found(self) -> bool:
        return self.status == 404


@dataclass(frozen=True)
class Call:
    """One HTTP request to the API server."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.content_type:
            headers["Content-Type"] = self.content_type
        return headers


def request(
    verb: str,
    kind: Kind,
    namespace: str | None = None,
    name: str | None = None,
    *,
    obj: Mapping[str, Any] | None = None,
    subresource: str | None = None,
    params: Mapping[str, str] | None = None,
    field_manager: str = FIELD_MANAGER,
) -> Call:
    """The request for ``verb`` (get, list, watch, apply, create, delete, log) on ``kind``."""
    path = kind.path(namespace, name)
    if subresource:
        path += f"/{subresource}"
    query = dict(params or {})
    if verb in ("get", "list", "log"):
        return Call("GET", path, query)
    if verb == "apply":
        query.update(fieldManager=field_manager, force="true")
        return Call("PATCH", path, query, _json(obj), "application/apply-patch+yaml")
    if verb == "create":
        return Call("POST", path, query, _json(obj), "application/json")
    if verb == "delete":
        body = _json({"kind": "DeleteOptions", "apiVersion": "v1", **query})
        return Call("DELETE", path, {}, body, "application/json")
    raise ValueError(f"unknown verb {verb!r}")


def _json(obj: Mapping[str, Any] | None) -> bytes:
    return json.dumps(obj or {}, separators=(",", ":"), sort_keys=True).encode()


def _error(response: httpx.Response, call: Call) -> ApiError:
    try:
        status = response.json()
        message, reason = str(status.get("message") or ""), str(status.get("reason") or "")
    except ValueError:
        message, reason = response.text.strip()[:500], ""
    what = f"{call.method} {call.path}"
    if response.status_code in (401, 403):
        message = message or "forbidden"
        return ApiError(response.status_code, f"{what}: not allowed: {message}", reason)
    return ApiError(response.status_code, f"{what}: {message or response.reason_phrase}", reason)


def _unreachable(exc: httpx.HTTPError, client_url: object) -> ApiError:
    return ApiError(0, f"cannot reach the Kubernetes API server at {client_url}: {exc}")


class Api:
    """Blocking calls, for the CLI."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def send(self, call: Call) -> httpx.Response:
        try:
            response = self.client.request(
                call.method, call.path, params=call.params, content=call.body, headers=call.headers
            )
        except httpx.HTTPError as exc:
            raise _unreachable(exc, self.client.base_url) from None
        if response.status_code >= 400:
            raise _error(response, call)
        return response

    def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.send(request("get", kind, namespace, name)).json())
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    def list(
        self, kind: Kind, namespace: str | None, params: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        return list(self.send(request("list", kind, namespace, params=params)).json()["items"])

    def logs(self, namespace: str, pod: str, params: Mapping[str, str]) -> str:
        return self.send(
            request("log", KINDS["Pod"], namespace, pod, subresource="log", params=params)
        ).text

    def stream_logs(self, namespace: str, pod: str, params: Mapping[str, str]) -> Iterator[str]:
        """Lines of a followed log, as they come; ends when the container stops."""
        call = request("log", KINDS["Pod"], namespace, pod, subresource="log", params=params)
        try:
            with self.client.stream(
                call.method, call.path, params=call.params, headers=call.headers, timeout=None
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response, call)
                yield from response.iter_lines()
        except httpx.HTTPError as exc:
            raise _unreachable(exc, self.client.base_url) from None


class AsyncApi:
    """Non-blocking calls, for the operator."""

    def __init__(self, client: httpx.AsyncClient, field_manager: str = FIELD_MANAGER) -> None:
        self.client = client
        self.field_manager = field_manager

    async def send(self, call: Call) -> httpx.Response:
        try:
            response = await self.client.request(
                call.method, call.path, params=call.params, content=call.body, headers=call.headers
            )
        except httpx.HTTPError as exc:
            raise _unreachable(exc, self.client.base_url) from None
        if response.status_code >= 400:
            raise _error(response, call)
        return response

    async def get(self, kind: Kind, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return dict((await self.send(request("get", kind, namespace, name))).json())
        except ApiError as exc:
            if exc.not_found:
                return None
            raise

    async def list(
        self, kind: Kind, namespace: str | None, params: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        response = await self.send(request("list", kind, namespace, params=params))
        return list(response.json()["items"])

    async def apply(
        self, obj: Mapping[str, Any], subresource: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Server-side apply ``obj`` whole; the object as stored, and whether it was new."""
        kind = kind_of(obj)
        metadata = obj["metadata"]
        call = request(
            "apply",
            kind,
            metadata.get("namespace"),
            metadata["name"],
            obj=obj,
            subresource=subresource,
            field_manager=self.field_manager,
        )
        response = await self.send(call)
        return dict(response.json()), response.status_code == 201

    async def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        kind = kind_of(obj)
        call = request("create", kind, obj["metadata"].get("namespace"), obj=obj)
        return dict((await self.send(call)).json())

    async def delete(self, kind: Kind, namespace: str | None, name: str) -> None:
        call = request("delete", kind, namespace, name, params={"propagationPolicy": "Background"})
        try:
            await self.send(call)
        except ApiError as exc:
            if not exc.not_found:
                raise
