"""``infergraph operator``: kopf watches, :mod:`~infergraph.kube.reconcile` acts.

Every watch event only *asks* for a reconcile of the deployment it concerns: an event on a
GraphDeployment (or, with ``--seldon-compat``, a SeldonDeployment) names it; an event on a
child (a Deployment rolling out, a Service deleted by hand) names its owner. A
:class:`Reconciler` runs at most one reconcile per deployment at a time and folds the requests
that arrive meanwhile into one more run, so a burst of events costs one reconcile.

The handlers are kopf's ``on.event`` kind, which keep no state on the resource: the operator
writes nothing to a GraphDeployment but its status (server-side apply, like every child), adds
no finalizer (children go by garbage collection, through their owner references) and needs no
annotations to resume after a restart: on start, the watch lists every resource and each is
reconciled once, which changes nothing that is already right.

Handlers live on a private :class:`kopf.OperatorRegistry`, never kopf's default one, so
importing this module registers nothing in a process that runs other kopf operators.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf

from infergraph.kube import kubeconfig
from infergraph.kube.api import KINDS, ApiError, AsyncApi
from infergraph.kube.names import MANAGED_BY
from infergraph.kube.options import RenderOptions
from infergraph.kube.reconcile import (
    CONTROLLER_LABELS,
    TransientError,
    events,
    reconcile,
    responsible,
)

__all__ = ["OperatorOptions", "Reconciler", "build_registry", "build_settings", "run"]

log = logging.getLogger("infergraph.operator")

Key = tuple[str, str, str]
"""(kind, namespace, name) of a deployment."""

_WATCHED_CHILDREN = (
    "ConfigMap",
    "Service",
    "Deployment",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
)
"""Children whose changes are watched, so drift is repaired at once and status follows a
rollout. The optional kinds (KEDA, Istio, Gateway API) are not watched, since their CRDs may
be missing; they are put back by the next reconcile, at the latest the periodic resync."""


@dataclass(frozen=True)
class OperatorOptions:
    """How ``infergraph operator`` runs."""

    namespaces: tuple[str, ...] = ()
    """Watch only these namespaces; empty: the whole cluster."""
    seldon_compat: bool = False
    """Also reconcile ``machinelearning.seldon.io`` SeldonDeployments."""
    controller_id: str | None = None
    render: RenderOptions = field(default_factory=RenderOptions)
    kubeconfig: str | None = None
    context: str | None = None
    resync_seconds: float = 600.0
    """Reconcile every known deployment this often, whatever the events."""
    liveness: str | None = None
    """kopf's liveness endpoint, e.g. ``http://0.0.0.0:8080/healthz``."""
    retry_seconds: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


class Reconciler:
    """One reconcile at a time per deployment, requests folded, failures retried."""

    def __init__(
        self, work: Callable[[Key], Awaitable[None]], retry_seconds: tuple[float, ...]
    ) -> None:
        self._work = work
        self._retry = retry_seconds
        self._running: dict[Key, asyncio.Task[None]] = {}
        self._again: set[Key] = set()
        self._failures: dict[Key, int] = {}
        self.known: set[Key] = set()

    def request(self, key: Key) -> None:
        self.known.add(key)
        if key in self._running:
            self._again.add(key)
            return
        self._running[key] = asyncio.create_task(self._loop(key), name=f"reconcile {key}")

    def forget(self, key: Key) -> None:
        self.known.discard(key)
        self._failures.pop(key, None)

    async def _loop(self, key: Key) -> None:
        try:
            while True:
                self._again.discard(key)
                try:
                    await self._work(key)
                    self._failures.pop(key, None)
                except (TransientError, ApiError) as exc:
                    self._later(key, exc)
                except Exception:
                    log.exception("reconcile of %s %s/%s failed", *key)
                    self._later(key, None)
                if key not in self._again:
                    return
        finally:
            self._running.pop(key, None)

    def _later(self, key: Key, exc: Exception | None) -> None:
        count = self._failures.get(key, 0)
        self._failures[key] = count + 1
        delay = self._retry[min(count, len(self._retry) - 1)]
        if exc is not None:
            log.warning("%s %s/%s: %s; retrying in %.0f s", *key, exc, delay)
        asyncio.get_running_loop().call_later(delay, self.request, key)

    async def stop(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _controller_filter(kind: str, controller_id: str | None) -> dict[str, Any]:
    return {CONTROLLER_LABELS[kind]: controller_id if controller_id else kopf.ABSENT}


def _owner(body: Any) -> tuple[str, str] | None:
    for ref in body.get("metadata", {}).get("ownerReferences") or ():
        if ref.get("controller") and ref.get("kind") in CONTROLLER_LABELS:
            return str(ref["kind"]), str(ref["name"])
    return None


def _connection_info(connection: kubeconfig.Connection) -> kopf.ConnectionInfo:
    headers = connection.auth_headers()
    scheme, _, credential = headers.get("Authorization", "").partition(" ")
    return kopf.ConnectionInfo(
        server=connection.server,
        ca_data=connection.ca_data,
        insecure=connection.insecure,
        scheme=scheme or None,
        token=credential or None,
        certificate_data=connection.client_cert_data,
        private_key_data=connection.client_key_data,
        default_namespace=connection.namespace,
    )


class _State:
    """What the handlers share: the API client and the reconciler, made on startup."""

    api: AsyncApi
    reconciler: Reconciler
    resync: asyncio.Task[None]


def build_registry(options: OperatorOptions) -> kopf.OperatorRegistry:
    """The operator's handlers, on a registry of its own."""
    registry = kopf.OperatorRegistry()
    state = _State()
    kinds = ["GraphDeployment"] + (["SeldonDeployment"] if options.seldon_compat else [])

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return _connection_info(_connect(options))

    async def work(key: Key) -> None:
        kind, namespace, name = key
        resource = await state.api.get(KINDS[kind], namespace, name)
        if resource is None or resource["metadata"].get("deletionTimestamp"):
            state.reconciler.forget(key)
            return
        if not responsible(resource, options.controller_id):
            state.reconciler.forget(key)
            return
        before = str((resource.get("status") or {}).get("state", ""))
        outcome = await reconcile(state.api, resource, options.render)
        now = datetime.now(UTC)
        for item in events(resource, outcome, before, now):
            try:
                await state.api.create(item)
            except ApiError as exc:  # an event lost is not worth a retry of the reconcile
                log.warning("could not record event %s: %s", item["reason"], exc)
        if outcome.created or outcome.updated or outcome.deleted or outcome.error:
            log.info(
                "%s %s/%s: %s%s",
                kind,
                namespace,
                name,
                outcome.state,
                "".join(
                    f"; {what} {', '.join(names)}"
                    for what, names in (
                        ("created", outcome.created),
                        ("updated", outcome.updated),
                        ("deleted", outcome.deleted),
                    )
                    if names
                )
                + (f"; {outcome.error}" if outcome.error else ""),
            )

    @kopf.on.startup(registry=registry)
    async def startup(**_: Any) -> None:
        connection = _connect(options)
        state.api = AsyncApi(kubeconfig.async_client(connection))
        state.reconciler = Reconciler(work, options.retry_seconds)
        state.resync = asyncio.create_task(_resync(state.reconciler, options.resync_seconds))

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        state.resync.cancel()
        await state.reconciler.stop()
        await state.api.client.aclose()

    for kind in kinds:
        _watch_resource(registry, state, kind, options)
    for child in _WATCHED_CHILDREN:
        _watch_child(registry, state, child)
    return registry


def _watch_resource(
    registry: kopf.OperatorRegistry, state: _State, kind: str, options: OperatorOptions
) -> None:
    resource = KINDS[kind]

    @kopf.on.event(
        group=resource.group,
        version=resource.api_version.rpartition("/")[2],
        plural=resource.plural,
        registry=registry,
        labels=_controller_filter(kind, options.controller_id),
        id=f"reconcile-{resource.plural}",
    )
    async def on_resource(*, type: str, namespace: str | None, name: str, **_: Any) -> None:
        key = (kind, namespace or "", name)
        if type == "DELETED":
            state.reconciler.forget(key)  # garbage collection removes the children
        else:
            state.reconciler.request(key)


def _watch_child(registry: kopf.OperatorRegistry, state: _State, kind: str) -> None:
    child = KINDS[kind]

    @kopf.on.event(
        group=child.group,
        version=child.api_version.rpartition("/")[2],
        plural=child.plural,
        registry=registry,
        labels={"app.kubernetes.io/managed-by": MANAGED_BY},
        id=f"watch-{child.plural}",
    )
    async def on_child(*, body: kopf.Body, namespace: str | None, **_: Any) -> None:
        owner = _owner(body)
        if owner is not None:
            state.reconciler.request((owner[0], namespace or "", owner[1]))


async def _resync(reconciler: Reconciler, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        for key in sorted(reconciler.known):
            reconciler.request(key)


def _connect(options: OperatorOptions) -> kubeconfig.Connection:
    return kubeconfig.load(options.kubeconfig, options.context)


def build_settings() -> kopf.OperatorSettings:
    """kopf's settings for this operator: no scanning (its RBAC reads no Namespaces or
    CRDs), no events from kopf's own logs (the operator posts its own, one per change)."""
    settings = kopf.OperatorSettings()
    settings.scanning.disabled = True
    settings.posting.enabled = False
    settings.peering.standalone = True
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    return settings


async def run(
    options: OperatorOptions,
    *,
    stop_flag: Any = None,
    ready_flag: Any = None,
) -> None:
    """Run the operator until ``stop_flag`` is set (or a signal, in the main thread)."""
    await kopf.operator(
        registry=build_registry(options),
        settings=build_settings(),
        standalone=True,
        clusterwide=not options.namespaces,
        namespaces=list(options.namespaces),
        liveness_endpoint=options.liveness,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
