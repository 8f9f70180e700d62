"""Paired comparisons of two graphs on the validation examples both were scored on.

Two graphs scored on the same examples differ by less noise than their means suggest: the
examples that are hard for one are mostly hard for the other. The paired difference is the mean
of per-example differences, its standard error that of those differences.

Example:
    >>> d = paired_difference({"a": 1.0, "b": 1.0, "c": 0.0}, {"a": 0.0, "b": 1.0, "c": 0.0})
    >>> round(d.mean, 3), d.n, d.within_noise
    (0.333, 3, True)
"""

from __future__ import annotations

__all__ = ["Paired", "paired_difference"]

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Paired:
    """mean: mean of (a - b) over the shared examples; se: its standard error; n: how many."""

    mean: float
    se: float
    n: int

    @property
    def within_noise(self) -> bool:
        """True when the difference is within two standard errors of zero (or unmeasured)."""
        return self.n < 2 or abs(self.mean) <= 2 * self.se

    def text(self) -> str:
        if self.n == 0:
            return "n/a"
        note = " (within noise)" if self.within_noise else ""
        return f"{self.mean:+.3f} ± {self.se:.3f}{note}"


def paired_difference(a: Mapping[str, float], b: Mapping[str, float]) -> Paired:
    """The paired difference a - b over the example ids both have."""
    shared = sorted(set(a) & set(b))
    n = len(shared)
    if n == 0:
        return Paired(0.0, 0.0, 0)
    diffs = [a[k] - b[k] for k in shared]
    mean = sum(diffs) / n
    if n < 2:
        return Paired(mean, 0.0, n)
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1)
    return Paired(mean, math.sqrt(var / n), n)
