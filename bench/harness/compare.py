"""Before and after: one figure of one target, from two source trees measured in one run.

``bench/before_after.py`` starts the servers; the arithmetic lives here, apart and free of
I/O, so that what counts as "worse" is tested without timing anything. Each side's value
is the median over its clean runs; the ratio divides the after median by the before one,
and the same ratio round by round (the two sides' runs of one round ran minutes apart at
most) shows how much the machine's noise moved it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["TOLERANCE", "Comparison", "Figure", "table"]

TOLERANCE = 0.05
"""How much worse a figure may get (5 %) before it is flagged."""


@dataclass(frozen=True)
class Figure:
    """One measured quantity: how a table names it, and which way is better."""

    label: str
    lower_is_better: bool
    spec: str = ",.0f"
    """Format of the medians."""


@dataclass(frozen=True)
class Comparison:
    """One target's figure on both trees: ``(round, value)`` of each side's clean runs."""

    target: str
    figure: Figure
    before: Sequence[tuple[int, float]]
    after: Sequence[tuple[int, float]]
    tolerance: float = TOLERANCE

    @property
    def before_median(self) -> float:
        return _median(v for _, v in self.before)

    @property
    def after_median(self) -> float:
        return _median(v for _, v in self.after)

    @property
    def ratio(self) -> float:
        """After over before; NaN when either side has no value."""
        before, after = self.before_median, self.after_median
        return after / before if before and not math.isnan(after) else math.nan

    @property
    def round_ratios(self) -> list[float]:
        """The same ratio for each round both sides have a run in."""
        before = dict(self.before)
        return [v / before[r] for r, v in self.after if before.get(r)]

    @property
    def worse_by(self) -> float:
        """How much worse after is than before, as a fraction (negative: better)."""
        return self.ratio - 1.0 if self.figure.lower_is_better else 1.0 - self.ratio

    @property
    def measured(self) -> bool:
        return not math.isnan(self.ratio)

    @property
    def flagged(self) -> bool:
        """Worse by more than the tolerance."""
        return self.measured and self.worse_by > self.tolerance

    def verdict(self) -> str:
        if not self.measured:
            return "not measured"
        if self.flagged:
            return f"**worse by {self.worse_by:.1%}**"
        if -self.worse_by > self.tolerance:
            return f"better by {-self.worse_by:.1%}"
        return "ok"


def _median(values: Iterable[float]) -> float:
    found = list(values)
    return statistics.median(found) if found else math.nan


def _fmt(value: float, spec: str) -> str:
    return "n/a" if math.isnan(value) else format(value, spec)


def table(comparisons: Iterable[Comparison]) -> list[str]:
    """Markdown rows: target, figure, both medians, the ratio, its per-round range."""
    lines = [
        "| target | figure | before | after | after / before | per-round range | verdict |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for c in comparisons:
        rounds = c.round_ratios
        spread = f"{min(rounds):.3f} to {max(rounds):.3f}" if rounds else ""
        lines.append(
            f"| {c.target} | {c.figure.label} | {_fmt(c.before_median, c.figure.spec)} "
            f"| {_fmt(c.after_median, c.figure.spec)} | {_fmt(c.ratio, '.3f')} | {spread} "
            f"| {c.verdict()} |"
        )
    return lines
