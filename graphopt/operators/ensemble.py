"""ensemble: joins the candidates of several branches.

mode "union" (no model call): the candidates of every incoming edge, duplicates (same
`Program.id`) removed, first occurrence kept, order kept.
mode "combine" (one optimizer call): the model merges the distinct instructions into one
program (demos and output format of the first candidate). When the reply is unusable it is
dropped with its reason and the node falls back to the union, so the step goes on.
"""

from __future__ import annotations

__all__ = ["Ensemble"]

from collections.abc import Collection
from typing import Any, Literal

from pydantic import Field

from .base import Operator, Port, Prompt, StepContext
from .common import LLMParams, format_programs, propose_instruction, unique_programs
from .registry import register_operator

COMBINE_PROMPT = Prompt(
    """Several instructions were proposed for the same language-model program:

{programs}

Combine them into one instruction that keeps the best idea of each and stays clear and short.
Reply with JSON of the form {{"instruction": "..."}} and nothing else.""",
    doc="Used in mode 'combine': merges the distinct candidate programs into one instruction.",
)


@register_operator
class Ensemble(Operator):
    """Union (kind "merge") or LLM combination (mode "combine") of the incoming candidates."""

    name = "ensemble"
    kind = "merge"
    description = "Joins branches: union of their candidates, or one program combining them."
    inputs = {"candidates": Port("Candidates", many=True, doc="candidates of every incoming edge")}
    outputs = {"candidates": Port("Candidates", doc="the union, or the combined program")}
    prompts = {"combine": COMBINE_PROMPT}

    class Params(LLMParams):
        mode: Literal["union", "combine"] = "union"
        limit: int | None = Field(None, ge=1, le=1000, description="keep at most N candidates (union)")
        min_chars: int = Field(10, ge=1, le=10000, description="shorter combined instructions are dropped")

    def __init__(self, node_id: str, params: dict[str, Any] | None = None, prompts: dict[str, str] | None = None):
        super().__init__(node_id, params, prompts)
        if self.params.mode == "combine":
            self.kind = "llm"

    def rendered_prompts(self, wired: Collection[str]) -> set[str]:
        """The combine prompt only in "combine" mode."""
        return {"combine"} if self.params.mode == "combine" else set()

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        union = unique_programs(list(inputs["candidates"]))
        if self.params.limit is not None:
            union = union[: self.params.limit]
        if self.params.mode == "union" or len(union) < 2:
            return {"candidates": union}
        prompt = self.prompt("combine", programs=format_programs(union))
        instruction = await propose_instruction(
            ctx, self.node_id, prompt, union[0].instruction, self.params, min_chars=self.params.min_chars
        )
        if instruction is None:
            return {"candidates": union}
        return {"candidates": [union[0].with_instruction(instruction)]}
