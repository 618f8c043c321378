"""``make demo`` (``python -m infergraph.demo``) runs end to end and shows the bandit learning."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest
from procs import clean_env


@pytest.mark.slow
def test_demo_routes_most_late_traffic_to_the_better_model() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "infergraph.demo"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    ok = re.search(
        r"demo OK: (\w+), the better model, received (\d+) of the last 100 requests", output
    )
    assert ok, output
    assert ok.group(1) == "logreg", output
    assert int(ok.group(2)) > 50, output
    assert re.search(r"logreg +\d+% +\d+% +\d+% +9\d% of \d+", output), output  # accuracy
    assert '"eg-router": ' in output, output  # meta.routing of a response
    assert "infergraph_executor_overhead_seconds" in output, output

    # the server is stopped: nothing listens on its REST port any more
    port = int(re.search(r"--http-port (\d+)", output).group(1))  # type: ignore[union-attr]
    with socket.socket() as s, pytest.raises(OSError):
        s.settimeout(1)
        s.connect(("127.0.0.1", port))
