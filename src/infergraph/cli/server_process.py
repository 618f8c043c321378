"""What every command that runs a server does first: logging, and memory habits."""

from __future__ import annotations

import logging
import sys

__all__ = ["LOG_FORMAT", "log_handler", "report", "start_server_process"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""How a server's log lines look on stderr (docs/microservice.md shows some)."""

_CLI_LOGGER = "infergraph.cli"


def log_handler(log_format: str) -> logging.Handler:
    """The stderr handler a server process logs through: ``text`` lines in
    :data:`LOG_FORMAT`, or ``json`` objects (``observability.json_logs.JsonFormatter``)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from infergraph.observability.json_logs import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    return handler


def start_server_process(
    log_level: str, malloc_tuning: bool, access_log: bool = False, log_format: str = "text"
) -> None:
    """Log to stderr at ``log_level`` in ``log_format``; keep large buffers in the heap
    unless told not to.

    This process is the server, so the handler goes where the lines of every logger in it
    (the user's model included) end: the one :func:`logging.basicConfig` installs, as
    before; only that handler gets the JSON formatter. With ``access_log`` the request
    lines (logger ``infergraph.access``, at INFO) are written whatever ``log_level`` is, as
    gunicorn's access log is apart from its error log.
    """
    logging.basicConfig(level=log_level, handlers=[log_handler(log_format)])
    if access_log:
        from infergraph.transport.rest.access_log import ACCESS_LOGGER

        logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO)
    if malloc_tuning:
        from infergraph.serving.memory import keep_large_buffers

        keep_large_buffers()


def report(command: str, message: str, log_format: str, level: int = logging.ERROR) -> None:
    """A problem ``command`` met, on stderr: ``infergraph serve: <message>`` as text, or,
    with ``json``, a line like every other (logger ``infergraph.cli``, at ``level``)."""
    if log_format == "json":
        logging.getLogger(_CLI_LOGGER).log(level, "%s: %s", command, message)
    else:
        print(f"{command}: {message}", file=sys.stderr)
