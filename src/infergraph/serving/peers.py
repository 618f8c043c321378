"""Metrics across worker processes: each worker answers snapshot requests on a unix socket.

Any worker asked for ``/metrics`` gathers the snapshots of every live peer in the
shared run folder and merges them, so the figures are the same whichever worker
the kernel hands the scrape to. A worker that died leaves a dead socket, which is
removed, and its series disappear (as Seldon removes a dead worker's series).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any

import orjson

from infergraph.observability.metrics import Registry, merge_snapshots, render

__all__ = ["PeerMetrics"]


class PeerMetrics:
    def __init__(self, registry: Registry, run_dir: str | Path | None) -> None:
        self.registry = registry
        self.run_dir = Path(run_dir) if run_dir else None
        self._server: asyncio.AbstractServer | None = None
        self._path: Path | None = None

    async def start(self) -> None:
        if self.run_dir is None:
            return
        self._path = self.run_dir / f"worker-{os.getpid()}.sock"
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()
        self._server = await asyncio.start_unix_server(self._answer, path=str(self._path))

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(orjson.dumps(self.registry.snapshot()))
            await writer.drain()
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._path is not None:
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()

    async def _ask(self, path: Path) -> dict[str, Any] | None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 1.0)
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()  # its worker is gone
            return None
        except (OSError, TimeoutError):
            return None
        try:
            data = await asyncio.wait_for(reader.read(), 2.0)
            return orjson.loads(data) if data else None
        except (OSError, TimeoutError, orjson.JSONDecodeError):
            return None
        finally:
            writer.close()

    async def text(self) -> str:
        """The merged Prometheus text of this worker and every live peer."""
        if self.run_dir is None:
            return render(self.registry)
        own = self._path
        peers = [p for p in sorted(self.run_dir.glob("worker-*.sock")) if p != own]
        snapshots = [s for s in await asyncio.gather(*(self._ask(p) for p in peers)) if s]
        return render(merge_snapshots([self.registry.snapshot(), *snapshots]))
