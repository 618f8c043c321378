"""What ``render`` needs to know about the cluster, passed in rather than read from anywhere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from infergraph._version import __version__

__all__ = ["INGRESS_KINDS", "Ingress", "RenderOptions"]

Ingress = Literal["none", "istio", "gateway-api"]
INGRESS_KINDS: tuple[Ingress, ...] = ("none", "istio", "gateway-api")


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """Cluster settings of one render; the defaults suit a plain cluster with no mesh."""

    namespace: str | None = None
    """Put every object in this namespace instead of the resource's ``metadata.namespace``."""
    ingress: Ingress = "none"
    """Who splits traffic and mirrors to the shadow: the orchestrator (``none``), an Istio
    VirtualService, or a Gateway API HTTPRoute."""
    image_prefix: str = ""
    """Registry and path in front of ``infergraph:<version>``, e.g. ``ghcr.io/acme/``."""
    version: str = __version__
    """The tag of the infergraph runtime image."""
    istio_gateway: str = "seldon-gateway"
    """The Istio Gateway of the VirtualService (annotation ``seldon.io/istio-gateway`` wins)."""
    default_user_id: int | None = 8888
    """``runAsUser`` of every pod whose spec sets no ``securityContext`` (Seldon's
    ``DEFAULT_USER_ID``; the runtime image's user); None leaves pods without one."""
    gateway: str = "infergraph-gateway"
    """The Gateway API Gateway the HTTPRoute attaches to (``NAME`` or ``NAMESPACE/NAME``;
    annotation ``infergraph.io/gateway`` wins)."""

    @property
    def runtime_image(self) -> str:
        """The image that runs the orchestrator, ``fetch-model`` and the prepackaged servers."""
        return f"{self.image_prefix}infergraph:{self.version}"
