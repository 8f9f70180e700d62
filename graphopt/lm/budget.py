"""Budgets: caps on calls, tokens and dollars, for a whole run and per level.

A cap is checked before each model call, counting what the calls in flight are expected to spend;
when one is reached the call raises `BudgetExceeded` and everything done so far stays in the
ledger, the cache and the run store.
"""

from __future__ import annotations

__all__ = ["Caps", "Budget"]

from pydantic import BaseModel, ConfigDict, Field

from ..errors import BudgetExceeded
from .ledger import Ledger, Usage


class Caps(BaseModel):
    """Upper limits; None means no limit."""

    model_config = ConfigDict(frozen=True)

    calls: int | None = Field(None, ge=0)
    tokens: int | None = Field(None, ge=0)
    dollars: float | None = Field(None, ge=0)

    @property
    def limited(self) -> bool:
        return self.calls is not None or self.tokens is not None or self.dollars is not None

    def reached_by(self, usage: Usage, pending_calls: int = 0, sending: Usage | None = None) -> str | None:
        """The name of the first cap `usage` has reached, or None.

        `pending_calls` count against a call cap; `sending`, what the calls gone out and not
        answered yet are expected to spend, counts against a token or dollar cap, so the calls in
        flight when a cap is reached pass it by what the estimate misses, not by a whole wave.

        >>> Caps(tokens=10).reached_by(Usage(calls=2, prompt_tokens=8), sending=Usage(prompt_tokens=4))
        '10 tokens'
        """
        if self.calls is not None and usage.calls + pending_calls >= self.calls:
            return f"{self.calls} calls"
        sending = sending or Usage()
        if self.tokens is not None and usage.tokens + sending.tokens >= self.tokens:
            return f"{self.tokens} tokens"
        if self.dollars is not None and usage.cost + sending.cost >= self.dollars:
            return f"${self.dollars:g}"
        return None


class Budget(BaseModel):
    """Caps for the run as a whole and for each level.

    Example:
        >>> b = Budget(total=Caps(dollars=1.0), levels={"program": Caps(calls=500)})
    """

    model_config = ConfigDict(frozen=True)

    total: Caps = Field(default_factory=Caps)
    levels: dict[str, Caps] = Field(default_factory=dict)

    @property
    def caps_spend(self) -> bool:
        """Whether a token or dollar cap is set (then the calls in flight are counted against it)."""
        return any(c.tokens is not None or c.dollars is not None for c in (self.total, *self.levels.values()))

    def check(
        self,
        ledger: Ledger,
        level: str,
        pending: dict[str, int] | None = None,
        carried: Ledger | None = None,
        sending: dict[str, Usage] | None = None,
    ) -> None:
        """Raises BudgetExceeded if one more call at `level` would go past a cap.

        Args:
            ledger: this process's usage.
            level: the level of the call about to go out.
            pending: calls per level already admitted but not finished (against call caps).
            carried: usage of earlier sessions of the same run (a resumed search): caps are per
                run, not per invocation.
            sending: per level, what the calls gone out and not answered yet are expected to
                spend (against token and dollar caps).
        """
        pending, sending = pending or {}, sending or {}
        if self.total.limited:  # summing the ledger on every call costs; skip it when uncapped
            total = ledger.total()
            if carried is not None:
                total.add(carried.total())
            in_flight = Usage()
            for expected in sending.values():
                in_flight.add(expected)
            hit = self.total.reached_by(total, sum(pending.values()), in_flight)
            if hit:
                raise BudgetExceeded(f"run cap of {hit}")
        caps = self.levels.get(level)
        if caps is not None:
            used = ledger.level(level)
            if carried is not None:
                used.add(carried.level(level))
            hit = caps.reached_by(used, pending.get(level, 0), sending.get(level))
            if hit:
                raise BudgetExceeded(f"{level} cap of {hit}")
