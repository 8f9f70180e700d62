"""Stop conditions for a search, composable with `|` (stop when any says so) and `&` (when all do).

Example:
    >>> stop = MaxGenerations(20) | NoImprovement(patience=3) | BudgetStop(tokens=2_000_000)
    >>> stop.should_stop(SearchState(generation=20))
    'reached 20 generations'
"""

from __future__ import annotations

__all__ = [
    "SearchState",
    "StopCondition",
    "AnyStop",
    "AllStop",
    "MaxGenerations",
    "BudgetStop",
    "NoImprovement",
    "WallTime",
]

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SearchState:
    """What a stop condition can see about a running search.

    Attributes:
        generation: generations completed so far.
        best_scores: the best validation score after each completed generation (oldest first).
        usage: tokens and dollars spent per level, {level: {"tokens": .., "cost": ..}}.
        started_at: `time.monotonic()` when the search started.
    """

    generation: int = 0
    best_scores: list[float] = field(default_factory=list)
    usage: dict[str, dict[str, float]] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        """Seconds since the search started."""
        return time.monotonic() - self.started_at

    def total(self, key: str) -> float:
        """`key` ("tokens" or "cost") summed over levels."""
        return sum(float(u.get(key, 0) or 0) for u in self.usage.values())

    @staticmethod
    def usage_from(ledger: Any) -> dict[str, dict[str, float]]:
        """Per-level usage from a `graphopt.lm.Ledger` or its `to_dict()`."""
        data = ledger.to_dict() if hasattr(ledger, "to_dict") else ledger
        levels = data.get("levels", data) if isinstance(data, Mapping) else {}
        return {
            level: {"tokens": float(u.get("tokens", 0)), "cost": float(u.get("cost", 0.0))}
            for level, u in levels.items()
            if isinstance(u, Mapping)
        }


class StopCondition(ABC):
    """Decides whether a search should stop. Combine with `|` (any) and `&` (all)."""

    @abstractmethod
    def should_stop(self, state: SearchState) -> str | None:
        """The reason to stop now, or None to go on."""

    def __or__(self, other: StopCondition) -> AnyStop:
        return AnyStop(*_flatten(self, AnyStop), *_flatten(other, AnyStop))

    def __and__(self, other: StopCondition) -> AllStop:
        return AllStop(*_flatten(self, AllStop), *_flatten(other, AllStop))


def _flatten(cond: StopCondition, kind: type) -> tuple[StopCondition, ...]:
    if not isinstance(cond, StopCondition):
        raise TypeError(f"cannot combine a stop condition with {type(cond).__name__}")
    return cond.conditions if type(cond) is kind else (cond,)


class AnyStop(StopCondition):
    """Stops when any of its conditions does; the reason is the first one's."""

    def __init__(self, *conditions: StopCondition):
        self.conditions = tuple(conditions)

    def should_stop(self, state: SearchState) -> str | None:
        for cond in self.conditions:
            reason = cond.should_stop(state)
            if reason:
                return reason
        return None

    def __repr__(self) -> str:
        return " | ".join(map(repr, self.conditions))


class AllStop(StopCondition):
    """Stops only when all of its conditions do; the reason joins theirs."""

    def __init__(self, *conditions: StopCondition):
        self.conditions = tuple(conditions)

    def should_stop(self, state: SearchState) -> str | None:
        reasons = []
        for cond in self.conditions:
            reason = cond.should_stop(state)
            if not reason:
                return None
            reasons.append(reason)
        return " and ".join(reasons) if reasons else None

    def __repr__(self) -> str:
        return "(" + " & ".join(map(repr, self.conditions)) + ")"


class MaxGenerations(StopCondition):
    """Stops after `n` completed generations."""

    def __init__(self, n: int):
        if n < 0:
            raise ValueError("MaxGenerations needs n >= 0")
        self.n = n

    def should_stop(self, state: SearchState) -> str | None:
        return f"reached {self.n} generations" if state.generation >= self.n else None

    def __repr__(self) -> str:
        return f"MaxGenerations({self.n})"


class BudgetStop(StopCondition):
    """Stops when spending reaches a cap, in total or for one level.

    Args:
        tokens: cap on tokens over all levels.
        dollars: cap on dollars over all levels.
        levels: per-level caps, {level: {"tokens": .., "dollars": ..}} (either key optional).

    Example:
        >>> BudgetStop(levels={"meta": {"tokens": 50_000}}).should_stop(
        ...     SearchState(usage={"meta": {"tokens": 60_000, "cost": 0.0}}))
        'meta tokens 60000 >= cap 50000'
    """

    def __init__(
        self,
        tokens: float | None = None,
        dollars: float | None = None,
        levels: Mapping[str, Mapping[str, float]] | None = None,
    ):
        self.tokens = tokens
        self.dollars = dollars
        self.levels = {lvl: dict(caps) for lvl, caps in (levels or {}).items()}
        for lvl, caps in self.levels.items():
            unknown = set(caps) - {"tokens", "dollars"}
            if unknown:
                raise ValueError(f"BudgetStop level {lvl!r}: unknown cap {sorted(unknown)} (use tokens, dollars)")

    def should_stop(self, state: SearchState) -> str | None:
        checks: list[tuple[str, float | None, float]] = [
            ("total tokens", self.tokens, state.total("tokens")),
            ("total dollars", self.dollars, state.total("cost")),
        ]
        for lvl, caps in self.levels.items():
            used = state.usage.get(lvl, {})
            checks.append((f"{lvl} tokens", caps.get("tokens"), float(used.get("tokens", 0) or 0)))
            checks.append((f"{lvl} dollars", caps.get("dollars"), float(used.get("cost", 0) or 0)))
        for what, cap, used in checks:
            if cap is not None and used >= cap:
                return f"{what} {used:g} >= cap {cap:g}"
        return None

    def __repr__(self) -> str:
        return f"BudgetStop(tokens={self.tokens}, dollars={self.dollars}, levels={self.levels})"


class NoImprovement(StopCondition):
    """Stops when the best score has not risen by more than `min_delta` in `patience` generations."""

    def __init__(self, patience: int, min_delta: float = 0.0):
        if patience < 1:
            raise ValueError("NoImprovement needs patience >= 1")
        self.patience = patience
        self.min_delta = min_delta

    def should_stop(self, state: SearchState) -> str | None:
        history = state.best_scores
        if len(history) <= self.patience:
            return None
        before = max(history[: -self.patience])
        recent = max(history[-self.patience :])
        if recent - before <= self.min_delta:
            return f"no improvement over {before:.4g} in {self.patience} generations"
        return None

    def __repr__(self) -> str:
        return f"NoImprovement(patience={self.patience}, min_delta={self.min_delta})"


class WallTime(StopCondition):
    """Stops once `seconds` have passed since the search started."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def should_stop(self, state: SearchState) -> str | None:
        elapsed = state.elapsed
        return f"wall time {elapsed:.0f}s >= {self.seconds:g}s" if elapsed >= self.seconds else None

    def __repr__(self) -> str:
        return f"WallTime({self.seconds})"
