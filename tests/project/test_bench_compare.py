"""bench/harness/compare.py: what bench/before_after.py calls worse (no timing here)."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "harness" / "compare.py"
_SPEC = importlib.util.spec_from_file_location("bench_compare", _PATH)
assert _SPEC is not None and _SPEC.loader is not None
compare = importlib.util.module_from_spec(_SPEC)
sys.modules["bench_compare"] = compare  # dataclasses look their module up while building
_SPEC.loader.exec_module(compare)

CPU = compare.Figure("CPU µs/req (c32)", lower_is_better=True)
RPS = compare.Figure("req/s (c32)", lower_is_better=False)


def rounds(*values: float) -> list[tuple[int, float]]:
    return list(enumerate(values, start=1))


@pytest.mark.parametrize(
    ("figure", "before", "after", "worse_by", "flagged", "verdict"),
    [
        pytest.param(CPU, (100, 102, 98), (104, 103, 105), 0.04, False, "ok", id="cpu-4pc-up"),
        pytest.param(
            CPU, (100, 100, 100), (106, 107, 105), 0.06, True, "**worse by 6.0%**", id="cpu-6pc-up"
        ),
        pytest.param(
            CPU, (100, 100, 100), (90, 90, 90), -0.10, False, "better by 10.0%", id="cpu-down"
        ),
        pytest.param(
            RPS, (1000, 1000, 1000), (940, 940, 940), 0.06, True, "**worse by 6.0%**", id="rps-down"
        ),
        pytest.param(
            RPS,
            (1000, 1000, 1000),
            (1100, 1100, 1100),
            -0.10,
            False,
            "better by 10.0%",
            id="rps-up",
        ),
        pytest.param(RPS, (1000,), (951,), 0.049, False, "ok", id="rps-just-within"),
    ],
)
def test_the_ratio_and_the_flag_follow_which_way_is_better(
    figure: object,
    before: tuple[float, ...],
    after: tuple[float, ...],
    worse_by: float,
    flagged: bool,
    verdict: str,
) -> None:
    c = compare.Comparison("t", figure, rounds(*before), rounds(*after))
    assert c.worse_by == pytest.approx(worse_by)
    assert c.flagged is flagged
    assert c.verdict() == verdict


def test_medians_not_means_and_rounds_paired_by_number() -> None:
    c = compare.Comparison("t", CPU, [(1, 100), (2, 300), (3, 110)], [(1, 120), (3, 99)])
    assert (c.before_median, c.after_median) == (110, 109.5)
    assert c.ratio == pytest.approx(109.5 / 110)
    assert c.round_ratios == pytest.approx([1.2, 0.9])  # round 2 has no after run


def test_a_side_without_runs_is_not_measured_and_not_flagged() -> None:
    c = compare.Comparison("t", CPU, rounds(100, 100), [])
    assert math.isnan(c.ratio) and not c.flagged and c.verdict() == "not measured"
    row = compare.table([c])[-1]
    assert row == "| t | CPU µs/req (c32) | 100 | n/a | n/a |  | not measured |"
