"""Run ``infergraph operator`` in a thread against the API emulator, and talk to both.

The operator runs exactly as ``infergraph operator`` runs it (:func:`infergraph.kube.operator.run`,
kopf included), in a thread with its own event loop, against a kubeconfig that points at the
emulator; the emulator serves from the test's own loop, so tests only ``await``.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import yaml

from infergraph.kube.operator import OperatorOptions, run

TEST_AGENT = "infergraph-tests"
"""The User-Agent of the test's own requests, to tell them from the operator's in the log."""


def write_kubeconfig(path: Path, server: str, namespace: str = "default") -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "emulator", "cluster": {"server": server}}],
                "users": [{"name": "tester", "user": {"token": "test-token"}}],
                "contexts": [
                    {
                        "name": "emulator",
                        "context": {
                            "cluster": "emulator",
                            "user": "tester",
                            "namespace": namespace,
                        },
                    }
                ],
                "current-context": "emulator",
            }
        )
    )
    return path


class OperatorThread:
    """The operator in a background thread; ``stop`` waits for it and re-raises its error."""

    def __init__(self, options: OperatorOptions) -> None:
        self.options = options
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="operator", daemon=True)

    def _main(self) -> None:
        try:
            asyncio.run(run(self.options, stop_flag=self._stop, ready_flag=self._ready))
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 30)
        assert not self._thread.is_alive(), "the operator did not stop within 30 s"
        if self.error is not None:
            raise self.error


def client(server: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server, headers={"User-Agent": TEST_AGENT}, timeout=10)


async def create(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(path, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def merge_patch(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await http.patch(
        path, json=body, headers={"Content-Type": "application/merge-patch+json"}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())
