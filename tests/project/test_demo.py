"""``make demo`` (``python -m infergraph.demo``) runs end to end and shows the bandit learning."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import pytest

from tests.helpers.doc_blocks import same_shape, shown
from tests.helpers.procs import clean_env


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
    # the summary has the lines examples/bandit/README.md shows, with this run's figures
    (summary,) = shown("examples/bandit/README.md", "tests/project/test_demo.py")
    printed = output.splitlines()
    for line in summary.lines:
        if line.strip().startswith("first requests went to:"):  # the order of this run
            assert any(p.strip().startswith("first requests went to:") for p in printed), output
        else:
            assert any(same_shape(line, p) for p in printed), f"no line like {line!r}:\n{output}"

    # the server is stopped: nothing listens on its REST port any more
    port = int(re.search(r"--http-port (\d+)", output).group(1))  # type: ignore[union-attr]
    with socket.socket() as s, pytest.raises(OSError):
        s.settimeout(1)
        s.connect(("127.0.0.1", port))


def test_demo_says_what_its_overhead_figure_measures() -> None:
    """The demo's figure is the server's wall-clock time outside the nodes; printed as a bare
    "µs per hop" it read as a contradiction of the README's CPU per hop (issue 13)."""
    from infergraph.demo import _overhead_report

    metrics = "\n".join(
        [
            'infergraph_executor_overhead_seconds_sum{predictor_name="p"} 0.024',
            'infergraph_executor_overhead_seconds_count{predictor_name="p"} 400',
            'infergraph_executor_hops_sum{predictor_name="p"} 1200',
        ]
    )
    text = " ".join(" ".join(_overhead_report(metrics)).split())
    assert "60 µs per request" in text and "20.0 µs per node call" in text, text
    assert "wall-clock" in text and "not CPU time" in text, text
    assert "bench/RESULTS.md" in text and "bench/graph.py" in text, text
    assert "per hop:" not in text, text
    assert _overhead_report("") == []
