"""select: keeps the best candidates by their score on the minibatch, measured with the PROGRAM model.

No optimizer-model call is made: each distinct candidate is run on the step's minibatch through
`ctx.score` (scores are shared by every node of the step, so a program is scored once). The
current program competes only when it is wired in (e.g. an edge `input.program -> select.candidates`).
With `by: likelihood` the candidates are ranked by the mean log-probability of the minibatch
targets instead (a dense score: a program that almost answers ranks above one far off, where exact
match gives both 0); the loop still accepts on the task's metric. Ties are broken by the `ties` parameter: "first" keeps the incoming order, so what arrives
first (the current program, when wired from `input`) wins; "last" prefers what arrives last (the
newest proposals), which keeps a search moving when a weak program model scores everything alike.
"""

from __future__ import annotations

__all__ = ["Select"]

from typing import Any, Literal

from pydantic import ConfigDict, Field

from .base import Operator, OperatorParams, Port, StepContext
from .common import unique_programs
from .registry import register_operator


@register_operator
class Select(Operator):
    """Top `k` candidates by minibatch score, best first."""

    name = "select"
    kind = "score"
    description = "Scores candidates on the minibatch with the program model and keeps the top k."
    inputs = {"candidates": Port("Candidates", many=True, doc="contenders from every incoming edge")}
    outputs = {"candidates": Port("Candidates", doc="the best k, best first")}
    prompts = {}

    class Params(OperatorParams):
        model_config = ConfigDict(extra="forbid", frozen=True)

        k: int = Field(1, ge=1, le=64, description="how many candidates to keep")
        ties: Literal["first", "last"] = Field("first", description="which of equal scores wins")
        by: Literal["metric", "likelihood"] = Field(
            "metric",
            description="rank by the task's metric, or by the mean log-probability of the targets (a dense score; "
            "the embedded model; falls back to the metric for programs of several calls)",
        )

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        contenders = unique_programs(list(inputs["candidates"]))
        if len(contenders) <= self.params.k:
            return {"candidates": contenders}  # nothing to choose: no program-model calls
        dense = await ctx.likelihood(contenders) if self.params.by == "likelihood" else None
        scores = dense if dense is not None else await ctx.score(contenders)
        order = 1 if self.params.ties == "first" else -1
        ranked = sorted(enumerate(contenders), key=lambda item: (-scores[item[1].id], order * item[0]))
        return {"candidates": [program for _, program in ranked[: self.params.k]]}
