"""One exception tree for infergraph.

Every error raised on purpose derives from :class:`InferGraphError` and carries a
transport-neutral :class:`ErrorCode`. The transports map codes to HTTP and gRPC
status in one table (``infergraph.status``); nothing else chooses a status.

::

    InferGraphError
    ├── BadRequest                (400, MICROSERVICE_BAD_DATA)
    │   ├── PayloadTooLarge       (413)
    │   └── NotImplementedByComponent  (400; Seldon's SeldonNotImplementedError)
    ├── Unauthenticated           (401; no valid bearer token)
    ├── NotFound                  (404)
    ├── MethodNotAllowed          (405)
    ├── NotReady                  (503)
    ├── DeadlineExceeded          (504)
    ├── MicroserviceError         (any status; Seldon's SeldonMicroserviceException)
    ├── UserDefinedError          (any status and body; Seldon's model_error_handler)
    ├── UserCodeError             (500, MICROSERVICE_INTERNAL_ERROR; a user method raised)
    ├── BadMetric                 (500, MICROSERVICE_BAD_METRIC)
    ├── BadMetadata               (500, MICROSERVICE_BAD_METADATA)
    └── LoadError                 (start-up; a component cannot be served)
        └── BadParameter          (MICROSERVICE_BAD_PARAMETER)
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "BadMetadata",
    "BadMetric",
    "BadParameter",
    "BadRequest",
    "DeadlineExceeded",
    "ErrorCode",
    "InferGraphError",
    "LoadError",
    "MethodNotAllowed",
    "MicroserviceError",
    "NotFound",
    "NotImplementedByComponent",
    "NotReady",
    "PayloadTooLarge",
    "Unauthenticated",
    "UserCodeError",
    "UserDefinedError",
]


class ErrorCode(enum.Enum):
    """What went wrong, independent of the transport that reports it."""

    BAD_REQUEST = "bad_request"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNAUTHENTICATED = "unauthenticated"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NOT_READY = "not_ready"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    UNIMPLEMENTED = "unimplemented"
    INTERNAL = "internal"


class InferGraphError(Exception):
    """Root of every error infergraph raises on purpose.

    ``reason`` is Seldon's reason string, reported in the ``status.reason`` field of
    Seldon error JSON. ``status_code`` overrides the HTTP status the code maps to.
    ``node`` names the graph node or component the error came from, when known.
    """

    code: ErrorCode = ErrorCode.INTERNAL
    reason: str = "MICROSERVICE_INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        status_code: int | None = None,
        node: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason
        self.status_code = status_code
        self.node = node

    def __str__(self) -> str:
        return self.message


class BadRequest(InferGraphError):
    """The request is malformed: bad JSON, wrong data kinds, ragged arrays."""

    code = ErrorCode.BAD_REQUEST
    reason = "MICROSERVICE_BAD_DATA"


class PayloadTooLarge(BadRequest):
    """The request body is larger than the configured limit."""

    code = ErrorCode.PAYLOAD_TOO_LARGE


class NotImplementedByComponent(BadRequest):
    """The component does not implement the method the request needs."""

    code = ErrorCode.UNIMPLEMENTED


class Unauthenticated(InferGraphError):
    """A call without the bearer token the server requires, or with a wrong one."""

    code = ErrorCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class NotFound(InferGraphError):
    """An unknown path, model or node."""

    code = ErrorCode.NOT_FOUND
    reason = "MICROSERVICE_BAD_DATA"


class MethodNotAllowed(InferGraphError):
    """A known path called with an HTTP method it does not take."""

    code = ErrorCode.METHOD_NOT_ALLOWED
    reason = "MICROSERVICE_BAD_DATA"


class NotReady(InferGraphError):
    """The component or graph is not ready to serve yet."""

    code = ErrorCode.NOT_READY


class DeadlineExceeded(InferGraphError):
    """A call ran past its timeout."""

    code = ErrorCode.DEADLINE_EXCEEDED


class MicroserviceError(InferGraphError):
    """An error a user component raises to choose the status and reason itself.

    The equivalent of Seldon's ``SeldonMicroserviceException(message, status_code=400,
    payload=None, reason="MICROSERVICE_BAD_DATA")``: same arguments, same defaults.
    """

    code = ErrorCode.BAD_REQUEST
    reason = "MICROSERVICE_BAD_DATA"

    def __init__(
        self,
        message: str,
        status_code: int | None = None,
        payload: Any = None,
        reason: str = "MICROSERVICE_BAD_DATA",
    ) -> None:
        super().__init__(message, reason=reason, status_code=status_code or 400)
        self.payload = payload

    def to_dict(self) -> dict[str, Any]:
        return {"status": {"status": 1, "info": self.message, "code": -1, "reason": self.reason}}


class UserDefinedError(InferGraphError):
    """A user exception that chose its own HTTP status and error body.

    Seldon users give their exception a ``status_code`` and a ``to_dict()``, and a
    ``model_error_handler`` answers ``to_dict()`` with that status. ``body`` is that
    answer: a JSON value, or bytes of ``content_type``; REST sends it as it is, and
    ``message`` (the body as text) is what gRPC reports beside the mapped status.
    """

    code = ErrorCode.INTERNAL

    def __init__(
        self,
        message: str,
        status_code: int,
        body: Any,
        content_type: str = "application/json",
    ) -> None:
        super().__init__(message, reason="MICROSERVICE_INTERNAL_ERROR", status_code=status_code)
        self.body = body
        self.content_type = content_type


class UserCodeError(InferGraphError):
    """A user method raised an unexpected exception; it ran once and is not retried."""

    code = ErrorCode.INTERNAL
    reason = "MICROSERVICE_INTERNAL_ERROR"


class BadMetric(InferGraphError):
    """A component returned custom metrics that are not valid."""

    code = ErrorCode.INTERNAL
    reason = "MICROSERVICE_BAD_METRIC"


class BadMetadata(InferGraphError):
    """A component's metadata does not validate."""

    code = ErrorCode.INTERNAL
    reason = "MICROSERVICE_BAD_METADATA"


class LoadError(InferGraphError):
    """A component cannot be served: raised at start-up, never per request."""

    code = ErrorCode.INTERNAL
    reason = "MICROSERVICE_INTERNAL_ERROR"


class BadParameter(LoadError):
    """A component parameter cannot be parsed as its declared type."""

    code = ErrorCode.BAD_REQUEST
    reason = "MICROSERVICE_BAD_PARAMETER"
