"""Ports for the servers a test starts, which no other test process is handed meanwhile.

A port found free (bound to port 0, read, closed) and passed to a server stays free for
anyone until that server binds it: another pytest-xdist worker can be handed it in between,
and since infergraph's servers bind with ``SO_REUSEPORT`` both servers then share it
silently, and a test talks to the other test's server. So:

* a server in the test's own process binds port 0 itself and the test reads the port from
  it (``bind_socket(host, 0).getsockname()``, ``add_insecure_port("127.0.0.1:0")``);
* a server of ours that is given a port number (in another process, or one that binds
  what its settings name, as ``serve_graph`` does) gets a :class:`HeldPorts` port: bound
  here with ``SO_REUSEPORT``, not
  listening, for as long as the server uses it. The server binds beside it, the kernel
  hands the port to nobody else, and only listening sockets are given connections, so a
  connection made before the server listens is refused: a held port is also the port
  where "nothing listens";
* a server that does not bind with ``SO_REUSEPORT`` (redis-server, Prometheus, kopf's
  liveness endpoint), or runs as another user (the podman pod's: ``SO_REUSEPORT`` shares a
  port only between one user's sockets), takes :func:`released_ports`.

Tests take held ports from the ``held_ports`` fixture (``conftest.py``); helpers that start
a server hold theirs with :class:`HeldPorts` for as long as that server runs. One twin is
left: ``ecosystem/probe.py``'s ``held_port``, since the probe runs as a script of another
environment's python, which does not find this module.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from types import TracebackType

__all__ = ["HOST", "HeldPorts", "HoldPorts", "released_ports"]

HOST = "127.0.0.1"

HoldPorts = Callable[[int], list[int]]
"""The ``held_ports`` fixture: ``held_ports(n)`` -> ``n`` ports held until the test ends."""


class HeldPorts:
    """``n`` distinct ports (:attr:`ports`), each held by a bound, not listening,
    ``SO_REUSEPORT`` socket until :meth:`close` (or the end of a ``with`` block, which
    gives the list of ports)."""

    def __init__(self, n: int) -> None:
        self._socks: list[socket.socket] = []
        try:
            for _ in range(n):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                self._socks.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((HOST, 0))
        except BaseException:
            self.close()
            raise
        self.ports: list[int] = [int(sock.getsockname()[1]) for sock in self._socks]

    def close(self) -> None:
        """Let the ports go (safe to call more than once)."""
        for sock in self._socks:
            sock.close()

    def __enter__(self) -> list[int]:
        return self.ports

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def released_ports(n: int) -> list[int]:
    """``n`` distinct ports that were free a moment ago, found free and let go: for a
    server that does not bind with ``SO_REUSEPORT`` (beside a held port it binds only where
    it happens to set ``SO_REUSEADDR``, a detail of its own that these tests do not lean on).

    They are not held, so another process may take one before the server binds it; such a
    server then fails to bind ("address in use") instead of sharing the port, so the
    mix-up is loud: retry (as :mod:`redis_server` does) or let the test fail.
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            socks.append(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            socks[-1].bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
