"""Turn an exception a user method raised into the error Seldon would have answered.

Seldon users choose the answer to their own exceptions in two ways, and both are honoured:

1. a ``model_error_handler`` class attribute, a Flask ``Blueprint`` whose
   ``app_errorhandler`` functions make a response from the exception. Seldon registers it
   on its Flask app; here it is registered once, at load, on a private Flask app that only
   runs those handlers (Flask is then installed: the user's module imported it);
2. the convention those handlers follow, which needs no Flask: an exception with an integer
   ``status_code`` and a ``to_dict()`` is answered with that status and that dict.

An exception shaped like seldon_core's ``SeldonMicroserviceException`` without
``to_dict()`` keeps its status and reason; anything else is a 500
``MICROSERVICE_INTERNAL_ERROR`` carrying ``str(exc)``. Each exception is wrapped once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from infergraph.errors import (
    InferGraphError,
    LoadError,
    MicroserviceError,
    NotImplementedByComponent,
    UserCodeError,
    UserDefinedError,
)
from infergraph.protocol.seldon_json import dumps

__all__ = ["UserErrors", "is_not_implemented"]

log = logging.getLogger(__name__)


def is_not_implemented(exc: BaseException) -> bool:
    """Seldon's "use the default" signal: ours, or seldon_core's SeldonNotImplementedError."""
    return isinstance(exc, NotImplementedByComponent) or (
        type(exc).__name__ == "SeldonNotImplementedError"
    )


def _http_status(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
        return value
    return None


class _FlaskHandlers:
    """The user's blueprint on a private Flask app, asked for a response per exception."""

    def __init__(self, blueprint: Any, class_name: str) -> None:
        import flask  # the user's module built a Blueprint, so Flask is there

        self.app = flask.Flask(f"infergraph.{class_name}.model_error_handler")
        self.app.register_blueprint(blueprint)
        # app_errorhandler() registers app-wide, for any status code: scope None, code None
        self.handlers: dict[type, Callable[[BaseException], Any]] = dict(
            self.app.error_handler_spec.get(None, {}).get(None, {})
        )
        # Seldon's own handler for Exception is registered after the blueprint and wins
        self.handlers.pop(Exception, None)

    def answer(self, exc: Exception) -> tuple[int, bytes, str] | None:
        handler = next(
            (self.handlers[cls] for cls in type(exc).__mro__ if cls in self.handlers), None
        )
        if handler is None:
            return None
        with self.app.test_request_context():
            response = self.app.make_response(self.app.ensure_sync(handler)(exc))
            return response.status_code, response.get_data(), response.content_type


def _flask_handlers(user: Any) -> _FlaskHandlers | None:
    blueprint = getattr(user, "model_error_handler", None)
    if blueprint is None:
        return None
    class_name = type(user).__name__
    if type(blueprint).__name__ != "Blueprint" or not hasattr(blueprint, "deferred_functions"):
        raise LoadError(
            f"{class_name}.model_error_handler must be a flask.Blueprint, "
            f"got {type(blueprint).__name__}"
        )
    try:
        return _FlaskHandlers(blueprint, class_name)
    except Exception as exc:
        raise LoadError(
            f"{class_name}.model_error_handler cannot be registered: {type(exc).__name__}: {exc}"
        ) from exc


class UserErrors:
    """How one component's exceptions are answered; built once, at load."""

    def __init__(self, user: Any) -> None:
        self.class_name = type(user).__name__
        self._flask = _flask_handlers(user)

    def wrap(self, exc: Exception, where: str) -> InferGraphError:
        """The error to answer for ``exc``, raised by the user method ``where``."""
        if isinstance(exc, InferGraphError):
            return exc
        chosen = self._chosen(exc, where)
        if chosen is not None:
            log.info(
                "%s raised %s: answered with %d", where, type(exc).__name__, chosen.status_code
            )
            return chosen
        status = _http_status(getattr(exc, "status_code", None))
        if status is not None and hasattr(exc, "message"):  # seldon_core's exception, no to_dict
            reason = getattr(exc, "reason", "MICROSERVICE_BAD_DATA")
            return MicroserviceError(
                str(exc.message), status, getattr(exc, "payload", None), reason
            )
        log.error("%s raised %s", where, type(exc).__name__, exc_info=exc)
        return UserCodeError(str(exc) or type(exc).__name__)

    def _chosen(self, exc: Exception, where: str) -> UserDefinedError | None:
        """The status and body the user's handler or ``to_dict()`` chose, if any."""
        try:
            if self._flask is not None:
                answer = self._flask.answer(exc)
                if answer is not None:
                    code, content, content_type = answer
                    text = content.decode("utf-8", "replace").strip()
                    return UserDefinedError(text, code, content, content_type)
            status = _http_status(getattr(exc, "status_code", None))
            to_dict = getattr(exc, "to_dict", None)
            if status is None or not callable(to_dict):
                return None
            body = to_dict()
            if not isinstance(body, dict):
                log.warning("%s: %s.to_dict() returned no dict", where, type(exc).__name__)
                return None
            return UserDefinedError(dumps(body).decode(), status, body)
        except Exception as failure:  # the user's handler failed too: report the first error
            log.error(
                "%s: the error handler for %s failed", where, type(exc).__name__, exc_info=failure
            )
            return None
