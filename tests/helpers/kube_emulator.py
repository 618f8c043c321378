"""A stateful Kubernetes API emulator for tests: kmock 0.8's ``KubernetesEmulator``, made stricter.

``KubeEmulator`` serves the Kubernetes REST API over real HTTP (kmock's aiohttp test server), keeps
objects in memory and behaves like a kube-apiserver where operators and clients depend on it:

* metadata: ``uid``, ``resourceVersion`` (one counter for the whole server), ``generation`` (bumped
  when anything outside ``metadata``/``status`` changes), ``creationTimestamp``, ``generateName``;
  POST answers 201, a duplicate 409; a write that changes nothing bumps nothing and emits no event;
* ``/status`` isolation for resources that declare a ``status`` subresource, and ``/scale``;
* merge patch, JSON patch (a failed ``test`` is 422), server-side apply with a simplified field
  ownership: per object, subresource and field manager the last applied configuration is kept, and
  keys that a manager applied before but no longer applies are removed (unless another manager
  still applies them); ``emulator.managers`` records who applied what;
* label and field selectors on list and watch (an object that stops matching is DELETED for that
  watcher, one that starts matching is ADDED); watches resume from ``?resourceVersion=N`` by
  replaying the recorded events after N; lists carry the current resourceVersion;
* finalizers (``deletionTimestamp``, removal when emptied), garbage collection by
  ``ownerReferences[].uid`` (cascading; ``propagationPolicy=Orphan`` honoured), deleting a
  Namespace deletes what is in it; ``dryRun=All``;
* Namespaces list/get (kmock 0.8's path parser crashes on them), pod logs seeded by the test
  (``seed_logs``/``append_logs``/``close_logs``, with follow), ``/version/``;
* PUT answers 405 on purpose: the code under test is meant to PATCH or apply; the request is
  still recorded so that tests can assert that none was made.

What it does NOT emulate (a real cluster is still needed for these):

* real SSA field ownership: no ``managedFields``, no conflicts (``force`` is ignored), lists are
  atomic (replaced whole; no merge keys), ``null`` in an applied configuration deletes the key;
* strategic-merge-patch list semantics (a strategic merge patch is treated as a JSON merge patch);
* defaulting, conversion between API versions, admission, CRD schema or CEL validation,
  immutable fields, RBAC, authentication, quotas;
* controllers: no ReplicaSets, Pods, Endpoints or Events are ever created by the server, a
  Deployment only becomes Available when a test patches its status, the HPA never scales,
  Namespaces need not exist before objects are created in them;
* watch bookmarks other than the ``sendInitialEvents`` one, ``410 Gone``, paging (``limit`` and
  ``continue`` are ignored: every list is one page), field selectors are not restricted to the
  fields the real server indexes (any dotted path is accepted).

Use it with kmock's pytest plugin: ``pytestmark = pytest.mark.kmock(cls=KubeEmulator)``, then the
``kmock`` fixture is an instance; call ``declare_core(kmock)`` (or ``kmock.declare(...)``) first.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import datetime
import json
import os
import random
import re
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any, TypeVar

import aiohttp.web
import attrs
import jsonpatch
import kmock
import yaml
from kmock._internal import enums, filtering, k8s_views, parsing, rendering

T = TypeVar("T")
Obj = dict[str, Any]
ArrayKey = k8s_views.ArrayKey  # (kmock.resource, namespace | None, name)
LogLine = tuple[str, str]  # (RFC 3339 timestamp, message)

_DEFAULT_VERBS = frozenset({"create", "delete", "get", "list", "patch", "watch"})
_SYSTEM_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
_NOT_SPEC = frozenset({"apiVersion", "kind", "metadata", "status"})
_NAMESPACES = kmock.resource("v1/namespaces")
_PODS = kmock.resource("v1/pods")
_NAMESPACE_PATH = re.compile(r"/api/v1/namespaces(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?/?")
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's generateName alphabet
_MISSING = object()

_APPLY = "application/apply-patch+yaml"
_JSON_PATCH = "application/json-patch+json"
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_MERGE_PATCHES = ("application/merge-patch+json", "application/strategic-merge-patch+json")


# --------------------------------------------------------------------------------------------
# Errors, rendered by the server as a real-looking ``Status``.


def _qualified(res: kmock.resource) -> str:
    """``deployments.apps``, ``pods``: how the apiserver names a resource in its messages."""
    return f"{res.plural}.{res.group}" if res.group else str(res.plural)


def _error(status: int, reason: str, message: str, **details: Any) -> kmock.KubernetesError:
    return kmock.KubernetesError(status=status, reason=reason, message=message, details=details)


def _not_found(res: kmock.resource, name: str) -> kmock.KubernetesError:
    kind = {"name": name, "group": res.group, "kind": res.plural}
    return _error(404, "NotFound", f'{_qualified(res)} "{name}" not found', **kind)


def _bad_request(message: str) -> kmock.KubernetesError:
    return _error(400, "BadRequest", message)


def _invalid(message: str) -> kmock.KubernetesError:
    return _error(422, "Invalid", message)


# --------------------------------------------------------------------------------------------
# Pure helpers on plain dicts.


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge recursively, ``None`` deletes, the rest replaces.

    Server-side apply uses it as well (see the module docstring for what that simplifies).
    The result shares no mutable part with ``patch``, but may share parts of ``target``.
    """
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def prune_unapplied(
    obj: dict[str, Any],
    previous: Mapping[str, Any],
    current: Mapping[str, Any],
    others: Sequence[Mapping[str, Any]],
) -> None:
    """Delete from ``obj`` (in place) what a manager applied before but applies no more.

    This is server-side apply's field ownership, simplified to dict keys: a key that another
    manager (``others``: their last applied configurations, at this level) still applies stays.
    Maps are pruned key by key, so labels set by somebody else survive; a map left empty by the
    pruning is removed, as the apiserver does for a map that had only this manager's fields.
    """
    for key, old in previous.items():
        new = current.get(key, _MISSING)
        shared = [other[key] for other in others if isinstance(other, Mapping) and key in other]
        nested = isinstance(old, Mapping) and isinstance(obj.get(key), dict)
        if nested and (new is _MISSING or isinstance(new, Mapping)):
            below = new if isinstance(new, Mapping) else {}
            prune_unapplied(obj[key], old, below, shared)
            if new is _MISSING and not obj[key] and not shared:
                del obj[key]
        elif new is _MISSING and not shared:
            obj.pop(key, None)


def _spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What counts as "spec" for ``generation``: all but metadata and status."""
    return {key: value for key, value in obj.items() if key not in _NOT_SPEC}


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _lookup(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, Mapping) else None
    return obj


def _field_text(value: Any) -> str:
    """How a field selector sees a value: missing is the empty string, booleans lower-case."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _header(request: rendering.Request, name: str) -> str:
    """A request header, case-insensitively (kmock keeps the client's spelling)."""
    for key, value in request.headers.items():
        if key.lower() == name.lower():
            return value
    return ""


def _content_type(request: rendering.Request) -> str:
    return _header(request, "Content-Type").split(";")[0].strip().lower()


# --------------------------------------------------------------------------------------------
# Selectors.

_LABEL_REQUIREMENT = re.compile(
    r"\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9][-A-Za-z0-9_./]*)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[-A-Za-z0-9_.]*)"
    r"|\s(?P<setop>in|notin)\s*\((?P<values>[^()]*)\))?\s*"
)
_FIELD_REQUIREMENT = re.compile(
    r"\s*(?P<path>[A-Za-z0-9_.]+)\s*(?P<op>==|=|!=)\s*(?P<value>.*?)\s*"
)

Predicate = Callable[[Mapping[str, Any]], bool]


def _split_top_level(text: str) -> list[str]:
    """Split on the commas that are not inside ``in (a,b)``."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [part for part in parts if part.strip()]


def _label_requirement(text: str) -> Callable[[Mapping[str, str]], bool]:
    match = _LABEL_REQUIREMENT.fullmatch(text)
    has_operator = match is not None and (match["op"] or match["setop"])
    if match is None or (match["neg"] and has_operator):
        raise _bad_request(f"unable to parse requirement: {text.strip()!r}")
    key, value = match["key"], match["value"]
    values = {v.strip() for v in (match["values"] or "").split(",") if v.strip()}
    if match["neg"]:
        return lambda labels: key not in labels
    if match["op"] in ("=", "=="):
        return lambda labels: labels.get(key) == value
    if match["op"] == "!=":
        return lambda labels: labels.get(key) != value
    if match["setop"] == "in":
        return lambda labels: labels.get(key) in values
    if match["setop"] == "notin":
        return lambda labels: labels.get(key) not in values
    return lambda labels: key in labels


def parse_label_selector(text: str) -> Predicate:
    """``a=b,c!=d,e,!f,g in (x,y),h notin (z)`` -> a predicate on an object."""
    requirements = [_label_requirement(part) for part in _split_top_level(text)]

    def matches(obj: Mapping[str, Any]) -> bool:
        labels = _meta(obj).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def parse_field_selector(text: str) -> Predicate:
    """``metadata.name=x,involvedObject.kind!=Pod`` -> a predicate on an object."""
    requirements: list[tuple[str, bool, str]] = []
    for part in _split_top_level(text):
        match = _FIELD_REQUIREMENT.fullmatch(part)
        if match is None:
            raise _bad_request(f"invalid selector: {part.strip()!r}")
        requirements.append((match["path"], match["op"] != "!=", match["value"]))

    def matches(obj: Mapping[str, Any]) -> bool:
        return all(
            (_field_text(_lookup(obj, path)) == value) == equal
            for path, equal, value in requirements
        )

    return matches


@attrs.frozen
class _Filter:
    """Which objects a list or watch request sees."""

    namespace: str | None
    name: str | None
    labels: Predicate
    fields: Predicate

    @classmethod
    def of(cls, request: rendering.Request) -> _Filter:
        return cls(
            namespace=request.namespace,
            name=request.name,
            labels=parse_label_selector(request.params.get("labelSelector", "")),
            fields=parse_field_selector(request.params.get("fieldSelector", "")),
        )

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = _meta(obj)
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        if self.name is not None and meta.get("name") != self.name:
            return False
        return self.labels(obj) and self.fields(obj)


# --------------------------------------------------------------------------------------------
# Watch events and write outcomes.


@attrs.frozen
class _Change:
    """One stored change: what every watcher of the resource gets, filtered by its selectors."""

    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj
    old: Obj | None
    rv: int

    def event_for(self, flt: _Filter) -> dict[str, Any] | None:
        """The event this watcher sees: selectors turn a MODIFIED into ADDED or DELETED."""
        now = flt.matches(self.obj)
        if self.type != "MODIFIED":
            return {"type": self.type, "object": self.obj} if now else None
        before = self.old is not None and flt.matches(self.old)
        kind = "MODIFIED" if now and before else "ADDED" if now else "DELETED" if before else None
        return None if kind is None else {"type": kind, "object": self.obj}


@attrs.frozen
class _Outcome:
    status: int
    body: Obj


class ManagerIndex(Mapping[tuple[Any, str | None, str], set[str]]):
    """``emulator.managers['v1/secrets', 'ns', 'name'] -> {'my-operator'}``: who applied it."""

    def __init__(self, applied: Mapping[tuple[ArrayKey, str], Mapping[str, Obj]]) -> None:
        self._applied = applied

    def _index(self) -> dict[tuple[str, str | None, str], set[str]]:
        index: dict[tuple[str, str | None, str], set[str]] = collections.defaultdict(set)
        for ((res, namespace, name), _sub), managers in self._applied.items():
            index[_resource_text(res), namespace, name].update(managers)
        return {key: value for key, value in index.items() if value}

    def __getitem__(self, key: tuple[Any, str | None, str]) -> set[str]:
        res, namespace, name = key
        return set(self._index()[_resource_text(kmock.resource(res)), namespace, name])

    def __iter__(self) -> Iterator[tuple[str, str | None, str]]:
        return iter(self._index())

    def __len__(self) -> int:
        return len(self._index())


def _resource_text(res: kmock.resource) -> str:
    """``apps/v1/deployments`` or ``v1/pods``: the spelling tests use for keys."""
    return f"{res.group}/{res.version}/{res.plural}" if res.group else f"{res.version}/{res.plural}"


def _api_version(res: kmock.resource) -> str:
    return f"{res.group}/{res.version}" if res.group else str(res.version)


def _parse_path(path: str) -> parsing.ParsedPath:
    """kmock's path parser, except for Namespaces, which it cannot parse (0.8 raises)."""
    match = _NAMESPACE_PATH.fullmatch(path)
    if match and match["sub"] in (None, "status", "finalize"):
        return parsing.ParsedPath("", "v1", "namespaces", None, match["name"], match["sub"])
    return parsing.parse_path(path)


def _parse_timestamp(text: str) -> datetime.datetime:
    """RFC 3339 with up to nanoseconds (Python keeps microseconds)."""
    match = re.fullmatch(r"(.{19})(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if match is None:
        raise _bad_request(f"invalid timestamp {text!r}")
    fraction = (match[2] or "")[:6].ljust(6, "0")
    zone = "+00:00" if match[3] == "Z" else match[3]
    return datetime.datetime.fromisoformat(f"{match[1]}.{fraction}{zone}")


def _decode_body(text: str, content_type: str) -> Any:
    """JSON (what every client sends), or YAML for an apply patch; None when neither parses."""
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    if "yaml" in content_type:
        with contextlib.suppress(yaml.YAMLError):
            return yaml.safe_load(text)
    return None


# --------------------------------------------------------------------------------------------
# The emulator.


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    """kmock's in-memory Kubernetes API with the apiserver semantics listed in the module doc.

    State lives in kmock's own ``objects`` (so ``kmock.objects[...]`` assertions keep working),
    every change goes through ``_write`` under kmock's ``_lock`` and onto kmock's ``_buses``.
    """

    _rv: int = attrs.field(default=100, init=False)
    _changes: dict[kmock.resource, list[_Change]] = attrs.field(
        factory=lambda: collections.defaultdict(list), init=False
    )
    _applied: dict[tuple[ArrayKey, str], dict[str, Obj]] = attrs.field(factory=dict, init=False)
    _outcomes: dict[int, _Outcome] = attrs.field(factory=dict, init=False)
    _served: dict[int, int] = attrs.field(factory=dict, init=False)
    _logs: dict[tuple[str | None, str, str, bool], list[LogLine]] = attrs.field(
        factory=dict, init=False
    )
    _log_followers: dict[tuple[str | None, str, str], set[asyncio.Queue[LogLine | None]]] = (
        attrs.field(factory=lambda: collections.defaultdict(set), init=False)
    )
    _logs_closed: set[tuple[str | None, str, str]] = attrs.field(factory=set, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # Above kmock's own fallbacks (sub-priority 1), below anything a test declares.
        above = self.fallback**1
        logs = above[enums.action.FETCH, filtering.subresource("log")]
        logs << {"Content-Type": "text/plain; charset=utf-8"} << self._serve_logs
        above[enums.method.PUT] << self._refuse_put
        self.fallback["get /version/"] << self._serve_server_version

    # ---- public helpers for tests ----------------------------------------------------------

    def declare(
        self,
        resource: str,
        kind: str,
        namespaced: bool = True,
        subresources: Iterable[str] = (),
        verbs: Iterable[str] = _DEFAULT_VERBS,
        shortnames: Iterable[str] = (),
    ) -> None:
        """Make a resource exist (discovery, CRUD): ``declare('apps/v1/deployments', ...)``."""
        self.resources[resource] = kmock.ResourceInfo(
            kind=kind,
            namespaced=namespaced,
            singular=kind.lower(),
            verbs=set(verbs),
            subresources=set(subresources),
            shortnames=set(shortnames),
        )

    def object(self, resource: str, namespace: str | None, name: str) -> Obj | None:
        """The current object (a copy), or None if it does not exist or was deleted."""
        current = self._current((kmock.resource(resource), namespace, name))
        return copy.deepcopy(current) if current is not None else None

    def objects_of(self, resource: str, namespace: str | None = None) -> list[Obj]:
        """Current objects of a resource (copies), in all namespaces unless one is given."""
        res = kmock.resource(resource)
        found = [
            copy.deepcopy(obj)
            for (key_res, key_ns, _), obj in self._live()
            if key_res == res and (namespace is None or key_ns == namespace)
        ]
        return sorted(
            found, key=lambda obj: (_meta(obj).get("namespace") or "", _meta(obj)["name"])
        )

    def writes(self) -> list[tuple[str, str, dict[str, str], str]]:
        """(method, path, query, content type) of every request but GET, in arrival order."""
        return [
            (request.method.value, request.url.path, dict(request.params), _content_type(request))
            for request in self._requests
            if request.method != enums.method.GET
        ]

    @property
    def managers(self) -> ManagerIndex:
        """Which field managers have server-side-applied each object (any subresource)."""
        return ManagerIndex(self._applied)

    def applied_by(
        self, resource: str, namespace: str | None, name: str, manager: str, subresource: str = ""
    ) -> Obj | None:
        """The configuration ``manager`` applied last to the object (or its subresource)."""
        key = (kmock.resource(resource), namespace, name)
        applied = self._applied.get((key, subresource), {}).get(manager)
        return copy.deepcopy(applied) if applied is not None else None

    # ---- pod logs (call these from the test's event loop) ----------------------------------

    def seed_logs(
        self,
        namespace: str,
        pod: str,
        container: str,
        lines: Iterable[LogLine],
        previous: bool = False,
    ) -> None:
        """Set a container's log (or its previous instance's); a new current log reopens it."""
        self._logs[namespace, pod, container, previous] = list(lines)
        if not previous:
            self._logs_closed.discard((namespace, pod, container))

    def append_logs(
        self, namespace: str, pod: str, container: str, lines: Iterable[LogLine]
    ) -> None:
        """Add lines to a container's current log and to every ``follow=true`` reader of it."""
        lines = list(lines)
        self._logs.setdefault((namespace, pod, container, False), []).extend(lines)
        for queue in self._log_followers[namespace, pod, container]:
            for line in lines:
                queue.put_nowait(line)

    def close_logs(self, namespace: str, pod: str, container: str) -> None:
        """The container ended: ``follow=true`` readers get the end of the stream."""
        self._logs_closed.add((namespace, pod, container))
        for queue in self._log_followers[namespace, pod, container]:
            queue.put_nowait(None)

    # ---- request parsing and dispatch ------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """kmock's entry point with our own request parsing.

        Unlike kmock, API errors that the emulator answers on purpose (404, 409, 422, ...) are
        not collected into ``kmock.errors``: they are answers, not failures of the mock.
        """
        await raw_request.read()
        raw_response: aiohttp.web.StreamResponse | None = None
        try:
            if self.limit is not None and len(self._requests) >= self.limit:
                raise kmock.KMockError("Too many requests have been served so far.")
            request = await self._parse_request(raw_request)
            self._requests.append(request)
            try:
                return await self._handle(request)
            except rendering.StreamingError as e:
                raw_response = e.args[0]
                raise e.__cause__ or e from None
        except Exception as e:
            if not self._errors:
                raise
            if not isinstance(e, kmock.KubernetesError):
                self._errors[-1].append(e)
            if raw_response is None or not raw_response.prepared:
                return await self._render_error(e)
            await self._stream_error(e, raw_response)
            await raw_response.write_eof()
            return raw_response

    async def _parse_request(self, raw_request: aiohttp.web.BaseRequest) -> rendering.Request:
        """As ``kmock.Request._parse``, plus Namespace paths and YAML apply bodies."""
        body = await raw_request.read()
        text = body.decode("utf-8", errors="replace")
        k8s = _parse_path(raw_request.path)
        resource = None
        if k8s.group is not None:
            resource = kmock.resource(group=k8s.group, version=k8s.version, plural=k8s.plural)
        data = _decode_body(text, raw_request.content_type)
        if data is None and raw_request.content_type in _FORMS:
            data = await raw_request.post() or None  # as kmock does, for non-API reactions
        method = enums.method(raw_request.method)
        return rendering.Request(
            id=len(self._requests),
            raw_request=raw_request,
            url=raw_request.url,
            method=raw_request.method,
            params=dict(raw_request.query),
            headers=dict(raw_request.headers),
            cookies=dict(raw_request.cookies),
            data=data,
            body=body,
            text=text,
            action=parsing.guess_k8s(k8s, method, dict(raw_request.query)),
            resource=resource,
            namespace=k8s.namespace,
            name=k8s.name,
            subresource=k8s.subresource,
        )

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        """A ``Status`` like the apiserver's: details only when there are some, no traceback."""
        if not isinstance(exc, kmock.KubernetesError):
            return await super()._render_error(exc)
        status = {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": exc.message or "",
            "reason": exc.reason or "",
            "code": exc.status,
        }
        if exc.details:
            status["details"] = exc.details
        return aiohttp.web.json_response(status, status=exc.status)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        """Writes change the state first (even if a test's reaction answers), then respond.

        kmock's own ``KubernetesEmulator._handle`` is skipped: its state changes are replaced.
        """
        plain = super(kmock.KubernetesEmulator, self)._handle
        if not self._is_write(request):
            return await plain(request)
        async with self._lock:
            self._outcomes[request.id] = await self._write(request)
        try:
            response = await plain(request)
        finally:
            self._outcomes.pop(request.id, None)
        status = self._served.pop(request.id, None)
        if status is not None and not response.prepared:
            response.set_status(status)
        return response

    @staticmethod
    def _is_write(request: rendering.Request) -> bool:
        if request.resource is None or request.resource.plural is None:
            return False
        if request.action == enums.action.CREATE:
            return request.name is None
        return request.action in (enums.action.UPDATE, enums.action.DELETE)

    async def _write(self, request: rendering.Request) -> _Outcome:
        assert request.resource is not None and request.resource.plural is not None
        self._require_known(request.resource)
        if request.action == enums.action.CREATE:
            return await self._create(request)
        if request.action == enums.action.DELETE:
            return await self._delete(request)
        return await self._patch(request)

    # The fallbacks kmock registered for writes: answer what _write decided.
    def _serve_outcome(self, request: rendering.Request) -> rendering.Payload:
        outcome = self._outcomes[request.id]
        self._served[request.id] = outcome.status
        return outcome.body

    async def _serve_create(self, request: rendering.Request) -> rendering.Payload:
        return self._serve_outcome(request)

    async def _serve_update(self, request: rendering.Request) -> rendering.Payload:
        return self._serve_outcome(request)

    async def _serve_delete(self, request: rendering.Request) -> rendering.Payload:
        return self._serve_outcome(request)

    async def _refuse_put(self, request: rendering.Request) -> rendering.Payload:
        raise _error(
            405,
            "MethodNotAllowed",
            "PUT (replace) is refused by the test emulator: use PATCH or server-side apply",
        )

    # ---- store -----------------------------------------------------------------------------

    def _info(self, res: kmock.resource) -> kmock.ResourceInfo:
        # NB: kmock's ResourcesArray creates an entry on a plain lookup; avoid that.
        return self.resources[res] if res in self.resources else kmock.ResourceInfo()

    def _require_known(self, res: kmock.resource) -> None:
        if res not in self._get_resources():
            raise _error(404, "NotFound", "the server could not find the requested resource")

    def _has_subresource(self, res: kmock.resource, sub: str) -> bool:
        return sub in self._info(res).subresources

    def _current(self, key: ArrayKey) -> Obj | None:
        if key not in self._objects:
            return None
        obj = self._objects[key]
        return None if obj.deleted else obj.raw

    def _live(self) -> Iterator[tuple[ArrayKey, Obj]]:
        for key, obj in list(self._objects.items()):
            if not obj.deleted:
                yield key, obj.raw

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    async def _emit(self, res: kmock.resource, kind: str, obj: Obj, old: Obj | None) -> None:
        change = _Change(kind, obj, old, int(_meta(obj).get("resourceVersion") or self._rv))
        self._changes[res].append(change)
        await self._buses[res].put(change)

    def _store(self, key: ArrayKey, obj: Obj) -> None:
        if key in self._objects:
            self._objects[key].history.append(obj)
        else:
            self._objects[key] = obj

    # ---- create ----------------------------------------------------------------------------

    def _namespace_for(self, request: rendering.Request, meta: Mapping[str, Any]) -> str | None:
        assert request.resource is not None
        namespaced = self._info(request.resource).namespaced
        if namespaced is None:
            namespaced = request.namespace is not None or bool(meta.get("namespace"))
        if not namespaced:
            return None
        body_ns = meta.get("namespace")
        if request.namespace and body_ns and body_ns != request.namespace:
            raise _bad_request(
                "the namespace of the provided object does not match the namespace sent on the"
                " request"
            )
        namespace = request.namespace or body_ns
        if not namespace:
            raise _bad_request("an empty namespace may not be set during creation")
        return str(namespace)

    def _name_for(self, res: kmock.resource, namespace: str | None, meta: Mapping[str, Any]) -> str:
        if meta.get("name"):
            return str(meta["name"])
        prefix = meta.get("generateName")
        if not prefix:
            raise _invalid("metadata.name: Required value: name or generateName is required")
        while True:
            name = prefix + "".join(random.choices(_NAME_ALPHABET, k=5))
            if self._current((res, namespace, name)) is None:
                return str(name)

    def _stamp_new(self, res: kmock.resource, obj: Obj, namespace: str | None, name: str) -> Obj:
        """What the apiserver sets on every new object."""
        meta = dict(_meta(obj))
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(field, None)
        meta.update(name=name, uid=str(uuid.uuid4()), resourceVersion=self._next_rv())
        meta.update(generation=1, creationTimestamp=_now())
        if namespace is None:
            meta.pop("namespace", None)
        else:
            meta["namespace"] = namespace
        body = {key: value for key, value in obj.items() if key not in ("apiVersion", "kind")}
        body["metadata"] = meta
        if self._has_subresource(res, "status"):
            body.pop("status", None)  # status is the controllers' to write, via /status
        if res == _NAMESPACES:
            body["status"] = {"phase": "Active"}
        kind = self._info(res).kind or obj.get("kind") or str(res.plural).capitalize()
        return {"apiVersion": obj.get("apiVersion", _api_version(res)), "kind": kind, **body}

    async def _create(self, request: rendering.Request) -> _Outcome:
        assert request.resource is not None
        if not isinstance(request.data, Mapping):
            raise _bad_request("the body of the request is not a JSON object")
        return await self._create_object(request, copy.deepcopy(dict(request.data)))

    async def _create_object(self, request: rendering.Request, body: Obj) -> _Outcome:
        res = request.resource
        assert res is not None
        meta = _meta(body)
        namespace = self._namespace_for(request, meta)
        name = self._name_for(res, namespace, meta)
        key = (res, namespace, name)
        if self._current(key) is not None:
            detail = {"name": name, "group": res.group, "kind": res.plural}
            message = f'{_qualified(res)} "{name}" already exists'
            raise _error(409, "AlreadyExists", message, **detail)
        obj = self._stamp_new(res, body, namespace, name)
        if not _dry_run(request):
            self._store(key, obj)
            await self._emit(res, "ADDED", obj, None)
        return _Outcome(201, obj)

    # ---- patch -----------------------------------------------------------------------------

    async def _patch(self, request: rendering.Request) -> _Outcome:
        res, sub, name = request.resource, request.subresource, request.name
        assert res is not None and name is not None
        if sub is not None and not self._has_subresource(res, sub):
            raise _not_found(res, name)
        if sub not in (None, "status", "scale"):
            raise _error(405, "MethodNotAllowed", f"the server does not allow PATCH on {sub}")
        kind = _content_type(request)
        if kind == _APPLY:
            return await self._apply(request)
        key = (res, request.namespace, name)
        current = self._current(key)
        if current is None:
            raise _not_found(res, name)
        if sub == "scale":
            return await self._patch_scale(request, key, current)
        candidate = _patched(current, request.data, kind)
        new = self._settle(res, current, candidate, sub)
        return await self._commit_update(request, key, current, new)

    async def _apply(self, request: rendering.Request) -> _Outcome:
        """Server-side apply: create, or merge plus removal of what this manager dropped."""
        res, sub, name = request.resource, request.subresource or "", request.name
        assert res is not None and name is not None
        manager = request.params.get("fieldManager", "")
        if not manager:
            # The apiserver answers 422 (errors.NewInvalid on PatchOptions), not 400.
            raise _invalid(
                'PatchOptions.meta.k8s.io "" is invalid: '
                "fieldManager: Required value: is required for apply patch"
            )
        applied = _applied_config(request.data, name)
        key = (res, request.namespace, name)
        current = self._current(key)
        if current is None and sub:
            raise _not_found(res, name)
        if current is None:
            outcome = await self._create_object(request, copy.deepcopy(applied))
            self._remember_apply(request, (key, sub), manager, applied, fresh=True)
            return outcome
        if sub == "scale":
            return await self._patch_scale(request, key, current)
        candidate = merge_patch(copy.deepcopy(current), applied)
        records = self._applied.get((key, sub), {})
        previous = records.get(manager)
        if previous is not None:
            others = [config for other, config in records.items() if other != manager]
            prune_unapplied(candidate, previous, applied, others)
        new = self._settle(res, current, candidate, sub or None)
        outcome = await self._commit_update(request, key, current, new)
        self._remember_apply(request, (key, sub), manager, applied, fresh=False)
        return outcome

    def _remember_apply(
        self,
        request: rendering.Request,
        record: tuple[ArrayKey, str],
        manager: str,
        applied: Obj,
        fresh: bool,
    ) -> None:
        """Keep the manager's last applied configuration (a new object starts a new record)."""
        if _dry_run(request):
            return
        if fresh:
            for old in [old for old in self._applied if old[0] == record[0]]:
                del self._applied[old]
        self._applied.setdefault(record, {})[manager] = applied

    async def _patch_scale(
        self, request: rendering.Request, key: ArrayKey, current: Obj
    ) -> _Outcome:
        """``/scale``: patch an ``autoscaling/v1`` Scale, store its ``spec.replicas``."""
        kind = _content_type(request)
        scale = _patched(
            _scale_of(current), request.data, _MERGE_PATCHES[0] if kind == _APPLY else kind
        )
        replicas = _lookup(scale, "spec.replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise _invalid(
                f"spec.replicas: Invalid value: {replicas!r}: must be a non-negative integer"
            )
        candidate = copy.deepcopy(current)
        candidate.setdefault("spec", {})["replicas"] = replicas
        new = self._settle(key[0], current, candidate, None)
        outcome = await self._commit_update(request, key, current, new)
        return _Outcome(outcome.status, _scale_of(outcome.body))

    def _settle(self, res: kmock.resource, current: Obj, candidate: Any, sub: str | None) -> Obj:
        """Keep what a write may not change; compute ``generation``.

        ``/status`` changes only ``.status``; the main resource never changes ``.status`` of a
        resource with a status subresource; system metadata always stays the server's.
        """
        if not isinstance(candidate, dict):
            raise _bad_request("the patched object is not a JSON object")
        name = str(_meta(current).get("name"))
        rv = _meta(candidate).get("resourceVersion")
        if rv is not None and rv != _meta(current).get("resourceVersion"):
            raise _error(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {_qualified(res)} "{name}": the object has'
                " been modified; please apply your changes to the latest version and try again",
            )
        if sub == "status":
            new = copy.deepcopy(current)
            _copy_key(candidate, new, "status")
            return new
        new = candidate
        if self._has_subresource(res, "status"):
            _copy_key(current, new, "status")
        new["apiVersion"], new["kind"] = current.get("apiVersion"), current.get("kind")
        meta = new["metadata"] = dict(_meta(new))
        for field in _SYSTEM_METADATA:
            _copy_key(_meta(current), meta, field)
        _forbid_new_finalizers(current, new)
        if _spec_part(new) != _spec_part(current):
            meta["generation"] = int(_meta(current).get("generation") or 0) + 1
        return new

    async def _commit_update(
        self, request: rendering.Request, key: ArrayKey, current: Obj, new: Obj
    ) -> _Outcome:
        """Store a changed object (a no-op write stores nothing, emits nothing: like etcd)."""
        if new == current or _dry_run(request):
            return _Outcome(200, new)
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._store(key, new)
        await self._emit(key[0], "MODIFIED", new, current)
        meta = _meta(new)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            await self._remove(key, new, "Background")
        return _Outcome(200, new)

    # ---- delete and garbage collection -----------------------------------------------------

    async def _delete(self, request: rendering.Request) -> _Outcome:
        res, name = request.resource, request.name
        assert res is not None and name is not None
        key = (res, request.namespace, name)
        current = self._current(key)
        if current is None:
            raise _not_found(res, name)
        options = request.data if isinstance(request.data, Mapping) else {}
        policy = request.params.get("propagationPolicy") or options.get("propagationPolicy")
        _check_preconditions(res, current, options.get("preconditions") or {})
        if _dry_run(request):
            return _Outcome(200, current)
        if _meta(current).get("finalizers"):
            return _Outcome(200, await self._mark_deleting(key, current))
        return _Outcome(200, await self._remove(key, current, policy or "Background"))

    async def _mark_deleting(self, key: ArrayKey, current: Obj) -> Obj:
        """An object with finalizers: ``deletionTimestamp`` now, removal when they are gone."""
        if _meta(current).get("deletionTimestamp"):
            return current
        new = copy.deepcopy(current)
        new["metadata"].update(deletionTimestamp=_now(), deletionGracePeriodSeconds=0)
        new["metadata"]["resourceVersion"] = self._next_rv()
        self._store(key, new)
        await self._emit(key[0], "MODIFIED", new, current)
        return new

    async def _drop(self, key: ArrayKey, current: Obj) -> Obj:
        final = copy.deepcopy(current)
        final.setdefault("metadata", {})["resourceVersion"] = self._next_rv()
        self._objects[key].delete()
        for record in [record for record in self._applied if record[0] == key]:
            del self._applied[record]
        await self._emit(key[0], "DELETED", final, None)
        return final

    async def _remove(self, key: ArrayKey, current: Obj, policy: str) -> Obj:
        """Delete an object, then what depended on it (garbage collection, cascading)."""
        final = await self._drop(key, current)
        uid = _meta(current).get("uid")
        if policy == "Orphan":
            await self._orphan(uid)
            return final
        pending = list(self._dependents(uid, key))
        while pending:
            dep_key = pending.pop(0)
            dep = self._current(dep_key)
            if dep is None:
                continue
            if _meta(dep).get("finalizers"):
                await self._mark_deleting(dep_key, dep)
                continue
            await self._drop(dep_key, dep)
            pending.extend(self._dependents(_meta(dep).get("uid"), dep_key))
        return final

    def _dependents(self, uid: str | None, key: ArrayKey) -> list[ArrayKey]:
        """Objects left without any existing owner by ``uid``'s removal (and a Namespace's)."""
        alive = {_meta(obj).get("uid") for _, obj in self._live()}
        found = []
        for dep_key, dep in self._live():
            owners = [ref.get("uid") for ref in _meta(dep).get("ownerReferences") or []]
            orphaned = uid in owners and not any(owner in alive for owner in owners)
            in_namespace = key[0] == _NAMESPACES and dep_key[1] == key[2]
            if orphaned or in_namespace:
                found.append(dep_key)
        return found

    async def _orphan(self, uid: str | None) -> None:
        for dep_key, dep in list(self._live()):
            refs = _meta(dep).get("ownerReferences") or []
            if any(ref.get("uid") == uid for ref in refs):
                new = copy.deepcopy(dep)
                kept = [ref for ref in refs if ref.get("uid") != uid]
                if kept:
                    new["metadata"]["ownerReferences"] = kept
                else:
                    del new["metadata"]["ownerReferences"]
                new["metadata"]["resourceVersion"] = self._next_rv()
                self._store(dep_key, new)
                await self._emit(dep_key[0], "MODIFIED", new, dep)

    # ---- reads -----------------------------------------------------------------------------

    async def _serve_fetch(self, request: rendering.Request) -> rendering.Payload:
        res, name, sub = request.resource, request.name, request.subresource
        assert res is not None and name is not None
        self._require_known(res)
        current = self._current((res, request.namespace, name))
        if current is None or (sub is not None and not self._has_subresource(res, sub)):
            raise _not_found(res, name)
        if sub == "scale":
            return _scale_of(current)
        if sub not in (None, "status"):
            raise _error(405, "MethodNotAllowed", f"the server does not allow GET on {sub}")
        return current

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        res = request.resource
        assert res is not None
        self._require_known(res)
        flt = _Filter.of(request)
        items = [obj for key, obj in self._live() if key[0] == res and flt.matches(obj)]
        items.sort(key=lambda obj: (_meta(obj).get("namespace") or "", _meta(obj).get("name")))
        kind = self._info(res).kind or (items[0].get("kind") if items else None) or "Object"
        return {
            "apiVersion": _api_version(res),
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        """Initial state (or the changes since ``?resourceVersion``), then live changes.

        The snapshot and the bus mark are taken under the write lock, before the headers go
        out, so nothing is missed or sent twice, whenever the watch starts relative to the list
        before it.
        """
        res = request.resource
        assert res is not None
        self._require_known(res)
        flt = _Filter.of(request)
        since = _int_or_zero(request.params.get("resourceVersion"))
        initial = request.params.get("sendInitialEvents") == "true"
        timeout = _int_or_zero(request.params.get("timeoutSeconds")) or None
        bus = self._buses[res]
        async with self._lock:
            marker = await bus.mark()
            if since and not initial:
                replay = [c.event_for(flt) for c in self._changes[res] if c.rv > since]
            else:
                objs = [obj for key, obj in self._live() if key[0] == res and flt.matches(obj)]
                replay = [{"type": "ADDED", "object": obj} for obj in objs]
            bookmark_rv = str(self._rv)
        try:
            yield b""  # kmock sends the headers now: a client that has them is being watched
            for event in replay:
                if event is not None:
                    yield event
            if initial:
                yield self._initial_bookmark(res, bookmark_rv)
            async for event in self._live_events(bus, marker, flt, timeout):
                yield event
        finally:
            with contextlib.suppress(ValueError):
                await bus.unmark(marker)

    async def _live_events(
        self, bus: kmock.Bus[Any], marker: kmock.BusMark[Any], flt: _Filter, timeout: int | None
    ) -> AsyncIterator[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return
            try:
                change = await asyncio.wait_for(bus.get(since=marker), remaining)
            except TimeoutError:
                return  # ?timeoutSeconds: the server ends the watch, the client resumes
            event = change.event_for(flt) if isinstance(change, _Change) else None
            if event is not None:
                yield event

    def _initial_bookmark(self, res: kmock.resource, rv: str) -> dict[str, Any]:
        annotations = {"k8s.io/initial-events-end": "true"}
        meta = {"resourceVersion": rv, "annotations": annotations}
        kind = self._info(res).kind or "Object"
        return {
            "type": "BOOKMARK",
            "object": {"apiVersion": _api_version(res), "kind": kind, "metadata": meta},
        }

    # ---- pod logs --------------------------------------------------------------------------

    def _log_container(self, namespace: str | None, pod: str, wanted: str) -> str:
        """The container a log request means, validated like the apiserver does."""
        pod_obj = self._current((_PODS, namespace, pod))
        seeded = sorted({c for (ns, p, c, _) in self._logs if ns == namespace and p == pod})
        if pod_obj is None and not seeded:
            raise _not_found(_PODS, pod)
        spec = (pod_obj.get("spec") or {}) if pod_obj is not None else {}
        main = [c.get("name") for c in spec.get("containers") or []] or seeded
        others = [c.get("name") for c in spec.get("initContainers") or []]
        others += [c.get("name") for c in spec.get("ephemeralContainers") or []]
        if not wanted:
            if len(main) == 1:
                return str(main[0])
            choices = " ".join(str(name) for name in main)
            message = (
                f"a container name must be specified for pod {pod}, choose one of: [{choices}]"
            )
            raise _bad_request(message)
        if wanted not in main + others:
            raise _bad_request(f"container {wanted} is not valid for pod {pod}")
        return wanted

    async def _serve_logs(self, request: rendering.Request) -> rendering.Payload:
        if request.resource != _PODS or request.name is None:
            raise _error(404, "NotFound", "the server could not find the requested resource")
        params, namespace, pod = request.params, request.namespace, request.name
        container = self._log_container(namespace, pod, params.get("container", ""))
        previous = params.get("previous") == "true"
        lines = self._logs.get((namespace, pod, container, previous))
        if previous and lines is None:
            raise _bad_request(
                f'previous terminated container "{container}" in pod "{pod}" not found'
            )
        selected = _select_log_lines(list(lines or []), params)
        stamped = params.get("timestamps") == "true"
        head = b"".join(_log_bytes(line, stamped) for line in selected)
        if "limitBytes" in params:
            head = head[: _int_or_zero(params["limitBytes"])]
        stream = (namespace, pod, container)
        if params.get("follow") != "true" or previous or stream in self._logs_closed:
            return head
        queue: asyncio.Queue[LogLine | None] = asyncio.Queue()
        self._log_followers[stream].add(queue)  # now, before any await: no line is missed
        return self._follow_logs(stream, queue, head, stamped)

    async def _follow_logs(
        self,
        stream: tuple[str | None, str, str],
        queue: asyncio.Queue[LogLine | None],
        head: bytes,
        stamped: bool,
    ) -> AsyncIterator[bytes]:
        try:
            yield head  # possibly b"": it still makes kmock send the headers
            while (line := await queue.get()) is not None:
                yield _log_bytes(line, stamped)
        finally:
            self._log_followers[stream].discard(queue)


# --------------------------------------------------------------------------------------------
# Helpers of the emulator that need no state.


def _dry_run(request: rendering.Request) -> bool:
    return request.params.get("dryRun") == "All"


def _int_or_zero(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _copy_key(source: Mapping[str, Any], target: dict[str, Any], key: str) -> None:
    """Make ``target[key]`` what it is in ``source``, absent included."""
    if key in source:
        target[key] = copy.deepcopy(source[key])
    else:
        target.pop(key, None)


def _forbid_new_finalizers(current: Obj, new: Obj) -> None:
    if not _meta(current).get("deletionTimestamp"):
        return
    added = set(_meta(new).get("finalizers") or []) - set(_meta(current).get("finalizers") or [])
    if added:
        raise _invalid(
            "metadata.finalizers: Forbidden: no new finalizers can be added if the object is"
            f" being deleted, found new finalizers {sorted(added)}"
        )


def _check_preconditions(
    res: kmock.resource, current: Obj, preconditions: Mapping[str, Any]
) -> None:
    for field in ("uid", "resourceVersion"):
        wanted = preconditions.get(field)
        if wanted is not None and wanted != _meta(current).get(field):
            name = _meta(current).get("name")
            raise _error(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {_qualified(res)} "{name}": Precondition'
                f" failed: {field}",
            )


def _patched(current: Obj, patch: Any, content_type: str) -> Any:
    """The object after a JSON patch or a merge patch (422 when the JSON patch fails)."""
    if content_type == _JSON_PATCH:
        if not isinstance(patch, list):
            raise _bad_request("a JSON patch must be a JSON array of operations")
        try:
            return jsonpatch.apply_patch(copy.deepcopy(current), patch)
        except jsonpatch.InvalidJsonPatch as e:
            raise _bad_request(f"invalid JSON patch: {e}") from None
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
            raise _invalid(f"the JSON patch could not be applied: {e}") from None
    if content_type in _MERGE_PATCHES:
        if not isinstance(patch, Mapping):
            raise _bad_request("a merge patch must be a JSON object")
        return merge_patch(copy.deepcopy(current), patch)
    raise _error(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format ({content_type or 'none'}): accepted"
        f" media types include: {_JSON_PATCH}, {', '.join(_MERGE_PATCHES)}, {_APPLY}",
    )


def _applied_config(data: Any, name: str) -> Obj:
    """Validate an apply body like the apiserver: an object with apiVersion, kind, our name."""
    if not isinstance(data, Mapping):
        raise _bad_request("error decoding YAML: the apply patch is not an object")
    for field in ("apiVersion", "kind"):
        if not data.get(field):
            raise _bad_request(f"error decoding YAML: Object '{field}' is missing")
    applied = copy.deepcopy(dict(data))
    meta = applied.setdefault("metadata", {})
    if meta.get("name", name) != name:
        raise _bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
        )
    meta["name"] = name
    return applied


def _scale_of(obj: Obj) -> Obj:
    """The ``autoscaling/v1`` Scale view of an object with ``spec.replicas``."""
    meta = _meta(obj)
    kept = ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
    match_labels = _lookup(obj, "spec.selector.matchLabels") or {}
    selector = _lookup(obj, "status.selector") or ",".join(
        f"{key}={value}" for key, value in sorted(match_labels.items())
    )
    return {
        "apiVersion": "autoscaling/v1",
        "kind": "Scale",
        "metadata": {key: meta[key] for key in kept if key in meta},
        "spec": {"replicas": _lookup(obj, "spec.replicas") or 0},
        "status": {"replicas": _lookup(obj, "status.replicas") or 0, "selector": selector},
    }


def _select_log_lines(lines: list[LogLine], params: Mapping[str, str]) -> list[LogLine]:
    """``sinceSeconds``/``sinceTime`` first, then ``tailLines``, as the kubelet does."""
    since: datetime.datetime | None = None
    if "sinceSeconds" in params:
        seconds = _int_or_zero(params["sinceSeconds"])
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds)
    elif "sinceTime" in params:
        since = _parse_timestamp(params["sinceTime"])
    if since is not None:
        lines = [line for line in lines if _parse_timestamp(line[0]) >= since]
    if "tailLines" in params:
        tail = _int_or_zero(params["tailLines"])
        lines = lines[-tail:] if tail > 0 else []
    return lines


def _log_bytes(line: LogLine, stamped: bool) -> bytes:
    timestamp, message = line
    return (f"{timestamp} {message}\n" if stamped else f"{message}\n").encode()


# --------------------------------------------------------------------------------------------
# Declarations.

# (resource, kind, namespaced, subresources, short names)
CORE_RESOURCES: tuple[tuple[str, str, bool, tuple[str, ...], tuple[str, ...]], ...] = (
    ("v1/namespaces", "Namespace", False, ("status",), ("ns",)),
    ("v1/pods", "Pod", True, ("status", "log"), ("po",)),
    ("v1/services", "Service", True, ("status",), ("svc",)),
    ("v1/endpoints", "Endpoints", True, (), ("ep",)),
    ("v1/events", "Event", True, (), ("ev",)),
    ("v1/configmaps", "ConfigMap", True, (), ("cm",)),
    ("v1/secrets", "Secret", True, (), ()),
    ("v1/serviceaccounts", "ServiceAccount", True, (), ("sa",)),
    ("apps/v1/deployments", "Deployment", True, ("status", "scale"), ("deploy",)),
    ("apps/v1/replicasets", "ReplicaSet", True, ("status", "scale"), ("rs",)),
    (
        "autoscaling/v2/horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        True,
        ("status",),
        ("hpa",),
    ),
    ("policy/v1/poddisruptionbudgets", "PodDisruptionBudget", True, ("status",), ("pdb",)),
    ("events.k8s.io/v1/events", "Event", True, (), ("ev",)),
    ("keda.sh/v1alpha1/scaledobjects", "ScaledObject", True, ("status",), ("so",)),
    ("gateway.networking.k8s.io/v1/httproutes", "HTTPRoute", True, ("status",), ()),
    ("networking.istio.io/v1beta1/virtualservices", "VirtualService", True, ("status",), ("vs",)),
    ("networking.istio.io/v1beta1/destinationrules", "DestinationRule", True, ("status",), ("dr",)),
    ("infergraph.io/v1/graphdeployments", "GraphDeployment", True, ("status", "scale"), ()),
    (
        "machinelearning.seldon.io/v1/seldondeployments",
        "SeldonDeployment",
        True,
        ("status",),
        ("sdep",),
    ),
)


def declare_core(emulator: KubeEmulator) -> KubeEmulator:
    """Declare what an operator and ``kubectl describe`` need (see ``CORE_RESOURCES``)."""
    for resource, kind, namespaced, subresources, shortnames in CORE_RESOURCES:
        emulator.declare(resource, kind, namespaced, subresources, shortnames=shortnames)
    return emulator


# --------------------------------------------------------------------------------------------
# Running a kopf operator against the emulator.


async def eventually(fn: Callable[[], Awaitable[T] | T], timeout: float = 10.0) -> T:
    """Retry ``fn`` (sync or async) until it stops raising AssertionError/KeyError."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            result = fn()
            if isinstance(result, Awaitable):
                return await result  # type: ignore[no-any-return]
            return result
        except (AssertionError, KeyError):
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


def _watches(emulator: KubeEmulator) -> int:
    return sum(1 for request in emulator if request.action == enums.action.WATCH)


@contextlib.asynccontextmanager
async def running_operator(
    emulator: KubeEmulator, argv: list[str], *, timeout: float = 10.0, url_env: str = "KMOCK_URL"
) -> AsyncIterator[Any]:
    """Run ``kopf <argv>`` in kopf's ``KopfRunner`` thread against the emulator.

    ``$KMOCK_URL`` (``url_env``) holds the emulator's URL for the operator's ``@kopf.on.login``.
    Entering waits until kopf has started a watch, because objects created during its first
    list could otherwise race with it (a test should create nothing before). Exiting stops the
    operator and re-raises its exception, if it had one. Yields the ``KopfRunner``.
    """
    from kopf.testing import KopfRunner  # kopf is a test-only dependency of this helper

    saved = os.environ.get(url_env)
    os.environ[url_env] = str(emulator.url).rstrip("/")
    runner = KopfRunner(argv, timeout=timeout)
    seen = _watches(emulator)
    runner.__enter__()

    def watching() -> None:
        if runner.future.done():
            result = runner.future.result()
            raise RuntimeError(
                f"kopf exited before watching: {result.exception!r}\n{result.output}"
            )
        assert _watches(emulator) > seen, "kopf has not started watching yet"

    try:
        await eventually(watching, timeout)
        yield runner
    except BaseException as exc:
        await asyncio.to_thread(runner.__exit__, type(exc), exc, exc.__traceback__)
        raise
    else:
        await asyncio.to_thread(runner.__exit__, None, None, None)
    finally:
        if saved is None:
            os.environ.pop(url_env, None)
        else:
            os.environ[url_env] = saved
