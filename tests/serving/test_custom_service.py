"""``custom_service``: a class's own server, run in a process of its own beside the REST and
gRPC servers, as Seldon starts it (reference §1.3, §1.10; checklist 12)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.helpers.procs import group_gone, poll, read_pids, serving, write_module

pytestmark = pytest.mark.slow

WITH_SERVICE = """
    import os
    import time
    from pathlib import Path

    HERE = Path(__file__).resolve().parent


    class WithService:
        def predict(self, X, features_names):
            return [[os.getpid()]]

        def custom_service(self):
            (HERE / "custom.pids").write_text(f"{os.getpid()}\\n")
            while True:  # a server of the user's own, until the service stops
                time.sleep(0.1)
"""


@pytest.mark.parametrize(
    "workers", [pytest.param(1, id="1-worker"), pytest.param(2, id="2-workers")]
)
def test_custom_service_runs_beside_the_servers_and_stops_with_them(
    tmp_path: Path, workers: int
) -> None:
    write_module(tmp_path, "WithService", WITH_SERVICE)
    with serving(tmp_path, ["WithService", "--workers", str(workers)]) as service:
        custom = poll(lambda: read_pids(tmp_path / "custom.pids"), what="custom_service started")
        assert len(custom) == 1
        answering = service.predict()["data"]["ndarray"][0][0]
        assert custom[0] not in (service.pid, answering)  # a process of its own
        assert os.getpgid(custom[0]) == service.pid  # of the service's process group
        os.kill(service.pid, signal.SIGTERM)
        assert service.wait(15) == 0, service.stderr()[-3000:]
        poll(lambda: group_gone(service.pid), timeout=10, what="custom_service stopped too")
        assert "Traceback" not in service.stderr()
