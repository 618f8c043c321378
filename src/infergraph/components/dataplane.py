"""The transport-neutral data plane of one component, shared by REST and gRPC."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from infergraph.components.component import Component
from infergraph.components.invoke import Invoker
from infergraph.components.loader import import_component, instantiate
from infergraph.components.metadata import build_metadata
from infergraph.components.methods import plain_method
from infergraph.components.parameters import parse_parameters
from infergraph.components.user_errors import is_not_implemented
from infergraph.errors import BadMetadata, LoadError, NotReady
from infergraph.observability import log_context
from infergraph.observability.component_metrics import ComponentMetrics, seldon_labels
from infergraph.observability.metrics import Registry
from infergraph.observability.tracing import Tracing
from infergraph.protocol.message import Feedback, Message
from infergraph.settings import ComponentSettings

__all__ = ["ComponentDataPlane", "build_user_object"]

log = logging.getLogger(__name__)


def build_user_object(settings: ComponentSettings) -> Any:
    """Import and construct the user's class once (before any worker forks)."""
    if not settings.interface_name:
        raise LoadError("No component given: pass MODULE[.Class] or set MODEL_NAME")
    cls = import_component(settings.interface_name, settings.path)
    params = parse_parameters(settings.parameters, settings.parameters_source)
    return instantiate(cls, params)


class ComponentDataPlane:
    """Everything REST and gRPC need to serve one user object.

    ``also_ready`` is what else ``ready`` (``/ready``, V2 ready) waits for beyond this
    process's ``load()``: with several workers, that every one of them has loaded.
    """

    def __init__(
        self,
        user: Any,
        settings: ComponentSettings | None = None,
        registry: Registry | None = None,
        *,
        also_ready: Callable[[], bool] | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.also_ready = also_ready
        self.tracing = tracing
        """A server span per data call (None: tracing is off); its owner shuts it down."""
        self.settings = settings = settings or ComponentSettings()
        self.registry = registry or Registry()
        self.metrics = ComponentMetrics(
            self.registry,
            seldon_labels(
                deployment_name=settings.deployment_id,
                model_name=settings.unit_id,
                image=settings.unit_image,
                predictor_name=settings.predictor_id,
                predictor_version=settings.predictor_labels.get("version", ""),
                worker_id=str(os.getpid()),
            ),
            feedback_metrics=settings.executor_enabled,
        )
        self.component = Component(
            user,
            name=settings.unit_id,
            image=settings.unit_image,
            include_metrics=settings.include_metrics_in_client_response,
            invoker=Invoker(settings.threads, settings.sync_mode),
            metrics_sink=self.metrics.custom,
            max_batch_size=settings.max_batch_size,
            max_batch_time=settings.max_batch_time,
        )
        self._loading: asyncio.Task[None] | None = None
        self._loading_since: float | None = None
        self._in_background = False
        self._metadata: dict[str, Any] | None = None
        self._metadata_error: BadMetadata | None = None
        try:
            self._metadata = build_metadata(
                settings.unit_image, self._init_metadata(user), settings.model_metadata
            )
        except BadMetadata as exc:
            # Seldon's answer on /metadata, with what is wrong
            self._metadata_error = BadMetadata(f"Model metadata unavailable: {exc}")
        self.passthrough = settings.payload_passthrough and plain_method(user, "predict_raw")

    @staticmethod
    def _init_metadata(user: Any) -> Any:
        """``init_metadata()``, called once; None when absent or not implemented."""
        init = plain_method(user, "init_metadata")
        if init is None or inspect.iscoroutinefunction(init):
            return None
        try:
            return init()
        except Exception as exc:
            if is_not_implemented(exc):
                return None
            raise LoadError(
                f"{type(user).__name__}.init_metadata() raised {type(exc).__name__}: {exc}"
            ) from exc

    @property
    def name(self) -> str:
        return self.settings.unit_id or type(self.component.user).__name__

    @property
    def loaded(self) -> bool:
        """This process's ``load()`` has finished: calls are served."""
        return bool(self.component.ready)

    @property
    def ready(self) -> bool:
        """What ``/ready`` reports: loaded, and whatever else ``also_ready`` waits for."""
        return self.loaded and (self.also_ready is None or self.also_ready())

    @property
    def loading(self) -> bool:
        """``load()`` is running now."""
        return self._loading_since is not None

    async def load(self) -> None:
        """Run the user's ``load()`` and log how long it took."""
        started = self._loading_since = time.monotonic()
        try:
            await self.component.load()
        finally:
            self._loading_since = None
        log.info("loaded model %s in %.2f s", self.name, time.monotonic() - started)

    def start_loading(self) -> asyncio.Task[None]:
        """Start ``load()`` beside the listening ports (what servers do): until it has
        finished, calls are refused with NotReady and probes report it."""
        self._in_background = True
        return self._load_task()

    def _load_task(self) -> asyncio.Task[None]:
        """``load()`` as a task, started now unless one runs or succeeded already (a failed
        one is tried again)."""
        task = self._loading
        if task is None or (task.done() and not self.loaded):
            task = self._loading = asyncio.get_running_loop().create_task(self.load())
            self._loading_since = time.monotonic()  # loading from now, not from its first step
        return task

    async def ensure_loaded(self) -> None:
        """Run the user's ``load()`` once, whichever transport asks first, and wait for it."""
        if not self.loaded:
            await asyncio.shield(self._load_task())

    async def admit(self, probe: bool = False) -> None:
        """Let a call through once ``load()`` has finished.

        While a server's :meth:`start_loading` runs it, a ``probe`` (live, ready, ping)
        passes at once to report it, and any other call is refused with NotReady (503,
        gRPC UNAVAILABLE) instead of waiting. Otherwise (an app served in-process, without
        a server) the first call runs ``load()`` and every call waits for it.
        """
        if self.loaded:
            return
        since = self._loading_since
        if not (self._in_background and since is not None):
            await self.ensure_loaded()
        elif not probe:
            raise NotReady(
                f"model {self.name!r} is loading (its load() started "
                f"{time.monotonic() - since:.1f} s ago); retry when GET /ready answers 200"
            )

    def takes_raw(self, endpoint: str) -> bool:
        """Whether ``endpoint`` gets the JSON request as it is (a ``*_raw`` method)."""
        return self.component.takes_raw(endpoint, "json")

    def metadata(self) -> dict[str, Any]:
        if self._metadata_error is not None:
            raise self._metadata_error
        assert self._metadata is not None
        return self._metadata

    async def predict(self, request: Message, wire: str = "json") -> Message:
        log_context.note_puid(request.meta.puid)
        return await self.component.predict(request, wire)

    async def predict_passthrough(self, body: bytes) -> Any:
        """PAYLOAD_PASSTHROUGH: the raw body in, whatever predict_raw returns out."""
        spec_fn = plain_method(self.component.user, "predict_raw")
        assert spec_fn is not None
        return await self.component.invoker.call(
            spec_fn, inspect.iscoroutinefunction(spec_fn), body
        )

    async def transform_input(self, request: Message, wire: str = "json") -> Message:
        log_context.note_puid(request.meta.puid)
        return await self.component.transform_input(request, wire)

    async def transform_output(self, request: Message, wire: str = "json") -> Message:
        log_context.note_puid(request.meta.puid)
        return await self.component.transform_output(request, wire)

    async def route(self, request: Message, wire: str = "json") -> Message:
        log_context.note_puid(request.meta.puid)
        return await self.component.route(request, wire)

    async def aggregate(
        self, requests: list[Message], wire: str = "json", raw: Any = None
    ) -> Message:
        return await self.component.aggregate(requests, wire, raw)

    async def send_feedback(self, feedback: Feedback, wire: str = "json") -> Message:
        response = await self.component.send_feedback(feedback, wire)
        self.metrics.feedback(feedback.reward)
        return response

    async def health_status(self, wire: str = "json") -> Message:
        return await self.component.health_status(wire)

    def close(self) -> None:
        self.component.invoker.close()
