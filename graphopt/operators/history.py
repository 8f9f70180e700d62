"""history: the best `n` earlier attempts, sorted by score (OPRO's meta-prompt ingredient).

Attempts of the same program are kept once (its best score). The output is sorted from worst
to best, the order OPRO shows them in, so the best instruction sits right before the request.
"""

from __future__ import annotations

__all__ = ["HistoryFilter", "best_attempts"]

from typing import Any

from pydantic import ConfigDict, Field

from ..types import Attempt
from .base import Operator, OperatorParams, Port, StepContext
from .registry import register_operator


def best_attempts(attempts: list[Attempt], n: int) -> list[Attempt]:
    """The `n` best distinct programs' attempts, worst first; ties keep the later attempt last."""
    best: dict[str, Attempt] = {}
    for attempt in attempts:
        held = best.get(attempt.program.id)
        if held is None or attempt.score >= held.score:
            best[attempt.program.id] = attempt
    ranked = sorted(best.values(), key=lambda a: (a.score, a.step))
    return ranked[-n:]


@register_operator
class HistoryFilter(Operator):
    """Keeps the top `n` attempts, worst first."""

    name = "history"
    kind = "data"
    description = "Keeps the best n earlier attempts with their scores, worst first (for OPRO-style rewrites)."
    inputs = {"history": Port("History", doc="earlier attempts, oldest first")}
    outputs = {"history": Port("History", doc="the best n, worst first")}
    prompts = {}

    class Params(OperatorParams):
        model_config = ConfigDict(extra="forbid", frozen=True)

        n: int = Field(8, ge=1, le=100, description="how many attempts to keep")

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        return {"history": best_attempts(list(inputs["history"]), self.params.n)}
