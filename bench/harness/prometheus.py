"""Read a server's Prometheus text exposition into plain numbers.

Only what a benchmark needs: every sample's value summed by sample name over all label
sets (``foo_sum``, ``foo_count``, ``foo_bucket`` ... are names of their own), so that two
readings taken around a run can be subtracted.
"""

from __future__ import annotations

import math
import urllib.request


def parse(text: str) -> dict[str, float]:
    """Sample name -> sum of its values over all label sets; comments are skipped."""
    totals: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name = line[: line.index("{")]
            rest = line[line.rindex("}") + 1 :].split()
        else:
            name, *rest = line.split()
        if not rest:
            continue
        try:
            value = float(rest[0])  # an optional timestamp may follow
        except ValueError:
            continue
        if math.isfinite(value):
            totals[name] = totals.get(name, 0.0) + value
    return totals


def scrape(url: str, timeout_s: float = 5.0) -> dict[str, float]:
    """GET ``url`` (a /metrics endpoint) and :func:`parse` it."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return parse(response.read().decode("utf-8", errors="replace"))
