"""Inspect a user object once: which Seldon methods it has and how to call them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from infergraph.errors import LoadError

__all__ = ["ENDPOINTS", "MethodSpec", "find_method", "is_stub", "plain_method"]

# endpoint -> (positional arguments the high-level method takes, whether it may take meta=)
ENDPOINTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "predict": (("X", "feature_names"), True),
    "transform_input": (("X", "feature_names"), True),
    "transform_output": (("X", "feature_names"), True),
    "route": (("features", "feature_names"), True),
    "aggregate": (("features_list", "feature_names_list"), False),
    "send_feedback": (("features", "feature_names", "reward", "truth"), False),
    "health_status": ((), False),
}


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """How to call one user method, decided at load."""

    name: str
    fn: Callable[..., Any]
    is_async: bool
    variant: str  # "high", "raw", "rest" or "grpc"
    takes_meta: bool = False
    takes_routing: bool = False


def is_stub(fn: Any) -> bool:
    """True for a base-class placeholder the user did not override."""
    func = getattr(fn, "__func__", fn)
    if getattr(func, "__infergraph_stub__", False):
        return True
    module = getattr(func, "__module__", "") or ""
    qualname = getattr(func, "__qualname__", "") or ""
    return module.startswith("seldon_core") and qualname.startswith("SeldonComponent.")


def plain_method(user: Any, name: str) -> Callable[..., Any] | None:
    fn = getattr(user, name, None)
    if fn is None or not callable(fn) or is_stub(fn):
        return None
    return fn


def _accepts(sig: inspect.Signature, n: int, kwarg: str | None) -> bool:
    try:
        sig.bind(*([None] * n), **({kwarg: None} if kwarg else {}))
    except TypeError:
        return False
    return True


def _check(cls_name: str, name: str, fn: Callable[..., Any], n: int) -> inspect.Signature | None:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    if not _accepts(sig, n, None):
        args, _ = ENDPOINTS.get(name, ((), False))
        wanted = ", ".join(args[:n]) if args else "one request argument"
        raise LoadError(
            f"{cls_name}.{name}{sig} cannot be called as Seldon calls it: it must accept ({wanted})"
        )
    return sig


def find_method(user: Any, endpoint: str, wire: str) -> MethodSpec | None:
    """The method serving ``endpoint`` for ``wire`` ("json" or "proto"), in Seldon's order.

    Deprecated ``*_rest``/``*_grpc`` come first, then ``*_raw``, then the high-level
    method. Signatures are checked here so that a mismatch fails at load.
    """
    cls_name = type(user).__name__
    legacy = f"{endpoint}_rest" if wire == "json" else f"{endpoint}_grpc"
    for variant, name in (("legacy", legacy), ("raw", f"{endpoint}_raw"), ("high", endpoint)):
        fn = plain_method(user, name)
        if fn is None:
            continue
        is_async = inspect.iscoroutinefunction(fn)
        if variant != "high":
            if endpoint != "health_status":
                _check(cls_name, name, fn, 1)
            return MethodSpec(
                name,
                fn,
                is_async,
                "rest"
                if wire == "json" and variant == "legacy"
                else "grpc"
                if variant == "legacy"
                else "raw",
            )
        args, may_meta = ENDPOINTS[endpoint]
        sig = _check(cls_name, name, fn, len(args))
        takes_meta = may_meta and (sig is None or _accepts(sig, len(args), "meta"))
        takes_routing = endpoint == "send_feedback" and (
            sig is None or _accepts(sig, len(args), "routing")
        )
        return MethodSpec(name, fn, is_async, "high", takes_meta, takes_routing)
    return None
