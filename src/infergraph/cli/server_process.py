"""What every command that runs a server does first: logging, and memory habits."""

from __future__ import annotations

import logging
import sys

__all__ = ["start_server_process"]


def start_server_process(log_level: str, malloc_tuning: bool) -> None:
    """Log to stderr at ``log_level``; keep large buffers in the heap unless told not to."""
    logging.basicConfig(
        level=log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if malloc_tuning:
        from infergraph.serving.memory import keep_large_buffers

        keep_large_buffers()
