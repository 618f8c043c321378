"""One reconcile of one deployment: apply what ``render`` returns, prune the rest, write status.

Level-based and idempotent, so it can run on any event, any number of times: it reads the
resource and its children as they are, never what changed. Every child is applied whole with
server-side apply under one field manager, so a repeated apply of an unchanged child changes
nothing on the server (no new resourceVersion, no watch event) and a child edited or deleted by
hand is put back. A spec that ``render`` rejects applies nothing: the children of the last good
spec keep serving and the status says Failed, with the validation message.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from infergraph.graph.spec import SpecError, parse_resource
from infergraph.kube.api import KINDS, ApiError, AsyncApi, kind_of
from infergraph.kube.names import MANAGED_BY
from infergraph.kube.options import RenderOptions
from infergraph.kube.render import RENDERED_KINDS, render
from infergraph.kube.status import ChildKey, child_key, compute_status, rejected_status, same_status

__all__ = [
    "CHILD_KINDS",
    "CONTROLLER_LABELS",
    "Outcome",
    "TransientError",
    "owner_reference",
    "reconcile",
    "responsible",
]

log = logging.getLogger(__name__)

CHILD_KINDS = RENDERED_KINDS
"""Every kind ``render`` can return: the kinds listed to find children to prune."""
OPTIONAL_KINDS = frozenset({"ScaledObject", "VirtualService", "DestinationRule", "HTTPRoute"})
"""Kinds whose CRDs (KEDA, Istio, Gateway API) a cluster may lack, or whose RBAC
(deploy/rbac-routing.yaml) may not be granted: absent, they simply have no children."""
CONTROLLER_LABELS = {
    "GraphDeployment": "infergraph.io/controller-id",
    "SeldonDeployment": "seldon.io/controller-id",
}
"""The label that names which operator owns a resource, as Seldon's ``seldon.io/controller-id``
did: an operator with ``--controller-id X`` takes only resources labelled X, one without takes
only the unlabelled ones, so two operators can share a cluster."""


class TransientError(Exception):
    """The API server could not be reached or failed (5xx, 409, 429): try again later."""


@dataclass
class Outcome:
    """What one reconcile did, for events and logs."""

    state: str = ""
    description: str = ""
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    error: str | None = None
    status_written: bool = False


def responsible(resource: Mapping[str, Any], controller_id: str | None) -> bool:
    """Whether an operator with ``controller_id`` handles ``resource``."""
    label = CONTROLLER_LABELS.get(str(resource.get("kind")), CONTROLLER_LABELS["GraphDeployment"])
    return (resource.get("metadata", {}).get("labels") or {}).get(label) == controller_id


def owner_reference(resource: Mapping[str, Any]) -> dict[str, Any]:
    metadata = resource["metadata"]
    return {
        "apiVersion": resource["apiVersion"],
        "kind": resource["kind"],
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or ()
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


def _label(key: ChildKey) -> str:
    return f"{key[0]} {key[1]}"


def _retryable(exc: ApiError) -> bool:
    return exc.status in (0, 409, 429) or exc.status >= 500


async def _children(api: AsyncApi, resource: Mapping[str, Any]) -> dict[ChildKey, dict[str, Any]]:
    """The objects that belong to ``resource`` now: labelled for it and owned by its uid."""
    metadata = resource["metadata"]
    selector = {
        "labelSelector": f"app.kubernetes.io/managed-by={MANAGED_BY},"
        f"infergraph.io/deployment={metadata['name']}"
    }
    found: dict[ChildKey, dict[str, Any]] = {}
    for kind in CHILD_KINDS:
        try:
            items = await api.list(KINDS[kind], metadata["namespace"], selector)
        except ApiError as exc:
            if kind in OPTIONAL_KINDS and exc.status in (403, 404):
                continue  # not installed, or not granted: nothing of it to prune
            raise
        for item in items:
            item.setdefault("kind", kind)
            if _owned_by(item, metadata["uid"]):
                found[child_key(item)] = item
    return found


def _desired(resource: Mapping[str, Any], options: RenderOptions) -> list[dict[str, Any]]:
    """What ``render`` returns for ``resource``, each object owned by it. Raises SpecError."""
    namespace = resource["metadata"]["namespace"]
    rendered = render(parse_resource(dict(resource)), _in(options, namespace))
    owner = owner_reference(resource)
    for obj in rendered:
        obj["metadata"]["ownerReferences"] = [owner]
    return rendered


def _in(options: RenderOptions, namespace: str) -> RenderOptions:
    return replace(options, namespace=namespace)


async def _write_status(
    api: AsyncApi, resource: Mapping[str, Any], status: dict[str, Any], outcome: Outcome
) -> None:
    outcome.state = str(status.get("state", ""))
    outcome.description = str(status.get("description", ""))
    if same_status(resource.get("status"), status):
        return
    metadata = resource["metadata"]
    body = {
        "apiVersion": resource["apiVersion"],
        "kind": resource["kind"],
        "metadata": {"name": metadata["name"], "namespace": metadata["namespace"]},
        "status": status,
    }
    await api.apply(body, subresource="status")
    outcome.status_written = True


async def reconcile(
    api: AsyncApi, resource: Mapping[str, Any], options: RenderOptions, now: datetime | None = None
) -> Outcome:
    """Bring the children of ``resource`` (as just read from the API) in line with its spec.

    Raises :class:`TransientError` when the API server failed in a way worth retrying.
    """
    now = now or datetime.now(UTC)
    outcome = Outcome()
    try:
        desired = _desired(resource, options)
    except SpecError as exc:
        outcome.error = str(exc)
        await _guard(
            _write_status(api, resource, rejected_status(resource, str(exc), now), outcome)
        )
        return outcome
    except Exception as exc:  # a bug of render's: say so in the status, apply nothing
        log.exception("render failed for %s", resource["metadata"].get("name"))
        outcome.error = f"infergraph could not render this resource ({type(exc).__name__}: {exc})"
        await _guard(
            _write_status(api, resource, rejected_status(resource, outcome.error, now), outcome)
        )
        return outcome
    try:
        await _apply(api, resource, desired, now, outcome)
    except ApiError as exc:
        if _retryable(exc):
            raise TransientError(str(exc)) from None
        # The server refused a child (an admission webhook, a quota, a missing CRD): that
        # needs a person, so say so in the status rather than retrying in a loop.
        outcome.error = f"could not apply the rendered objects: {exc}"
        await _guard(
            _write_status(api, resource, rejected_status(resource, outcome.error, now), outcome)
        )
    return outcome


async def _guard(step: Any) -> None:
    try:
        await step
    except ApiError as exc:
        if _retryable(exc):
            raise TransientError(str(exc)) from None
        raise


async def _apply(
    api: AsyncApi,
    resource: Mapping[str, Any],
    desired: list[dict[str, Any]],
    now: datetime,
    outcome: Outcome,
) -> None:
    existing = await _children(api, resource)
    observed: dict[ChildKey, dict[str, Any]] = {}
    for obj in desired:
        key = child_key(obj)
        stored, created = await api.apply(obj)
        stored.setdefault("kind", key[0])
        observed[key] = stored
        before = existing.get(key, {}).get("metadata", {}).get("resourceVersion")
        if created or key not in existing:
            outcome.created.append(_label(key))
        elif stored.get("metadata", {}).get("resourceVersion") != before:
            outcome.updated.append(_label(key))
    for key, obj in existing.items():
        if key not in observed:
            # list items may omit apiVersion; the kind's served version is then the one
            kind = kind_of(obj) if obj.get("apiVersion") else KINDS[key[0]]
            await api.delete(kind, obj["metadata"].get("namespace"), key[1])
            outcome.deleted.append(_label(key))
    await _write_status(api, resource, compute_status(resource, desired, observed, now), outcome)


def event(resource: Mapping[str, Any], kind: str, reason: str, message: str, now: datetime) -> dict:
    """A core/v1 Event about ``resource``, as ``kubectl describe`` lists them."""
    metadata = resource["metadata"]
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{metadata['name']}.{uuid.uuid4().hex[:16]}",
            "namespace": metadata["namespace"],
        },
        "involvedObject": {
            "apiVersion": resource["apiVersion"],
            "kind": resource["kind"],
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
            "resourceVersion": metadata.get("resourceVersion", ""),
        },
        "type": kind,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "infergraph-operator"},
        "reportingComponent": "infergraph-operator",
        "reportingInstance": "infergraph-operator",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def events(resource: Mapping[str, Any], outcome: Outcome, before: str, now: datetime) -> list[dict]:
    """The Events one reconcile's ``outcome`` is worth; none when it changed nothing."""
    out = []
    for reason, names in (
        ("Created", outcome.created),
        ("Updated", outcome.updated),
        ("Deleted", outcome.deleted),
    ):
        if names:
            out.append(event(resource, "Normal", reason, f"{reason} " + ", ".join(names), now))
    if outcome.error and outcome.status_written:
        out.append(event(resource, "Warning", "Failed", outcome.error, now))
    elif outcome.state and outcome.state != before:
        kind = "Warning" if outcome.state == "Failed" else "Normal"
        message = f"{outcome.state}: {outcome.description}"
        out.append(event(resource, kind, outcome.state, message, now))
    return out
