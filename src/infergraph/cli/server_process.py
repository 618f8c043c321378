"""What every command that runs a server does first: logging, and memory habits."""

from __future__ import annotations

import logging
import sys

__all__ = ["LOG_FORMAT", "start_server_process"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""How a server's log lines look on stderr (docs/microservice.md shows some)."""


def start_server_process(log_level: str, malloc_tuning: bool, access_log: bool = False) -> None:
    """Log to stderr at ``log_level``; keep large buffers in the heap unless told not to.

    With ``access_log`` the request lines (logger ``infergraph.access``, at INFO) are
    written whatever ``log_level`` is, as gunicorn's access log is apart from its error log.
    """
    logging.basicConfig(
        level=log_level,
        format=LOG_FORMAT,
        stream=sys.stderr,
    )
    if access_log:
        from infergraph.transport.access_log import ACCESS_LOGGER

        logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO)
    if malloc_tuning:
        from infergraph.serving.memory import keep_large_buffers

        keep_large_buffers()
