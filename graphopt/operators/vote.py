"""vote: combines candidates into one program that answers by majority. No model call.

The first `n` distinct incoming programs (voters of an incoming vote count one by one) become
one program: each input is answered by every voter and the most common extracted answer wins,
ties to the earliest voter (see `Program.vote`). Put a `select` before it to vote the best ones
(it keeps them best first), and one after it to keep the vote only where it beats the single
best program on the minibatch. A vote of n costs about n times a single program per input.
"""

from __future__ import annotations

__all__ = ["Vote"]

from typing import Any

from pydantic import ConfigDict, Field

from ..program.model import Program
from .base import Dropped, Operator, OperatorParams, Port, StepContext
from .common import unique_programs
from .registry import register_operator


def voters(program: Program) -> list[Program]:
    """The programs that answer in `program`'s place: itself, or each voter of a vote."""
    return [program.model_copy(update={"vote": ()}), *program.vote] if program.vote else [program]


@register_operator
class Vote(Operator):
    """One program voting over the first `n` distinct candidates."""

    name = "vote"
    kind = "data"
    description = "Combines the first n candidates into one program answering by majority vote (n calls per input)."
    inputs = {"candidates": Port("Candidates", many=True, doc="voters, best first")}
    outputs = {"candidates": Port("Candidates", doc="the voting program")}
    prompts = {}

    class Params(OperatorParams):
        model_config = ConfigDict(extra="forbid", frozen=True)

        n: int = Field(3, ge=2, le=9, description="voters (program calls per input)")

    def made(self) -> int:
        return 1

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        members = unique_programs([v for p in inputs["candidates"] for v in voters(p)])[: self.params.n]
        if len(members) < 2:
            ctx.dropped.append(Dropped(self.node_id, f"{len(members)} distinct candidate(s): a vote needs 2"))
            return {"candidates": []}
        lead, *others = members
        return {"candidates": [lead.model_copy(update={"vote": tuple(others)})]}
