"""paraphrase: `n` reworded variants of a program's instruction (sampled, temperature > 0).

Each variant is a separate sample of the same request; the LM client keeps repeated identical
requests at temperature > 0 distinct. Unusable or duplicate replies are dropped with a reason.
"""

from __future__ import annotations

__all__ = ["Paraphrase"]

from typing import Any

from pydantic import Field

from .base import Operator, Port, Prompt, StepContext
from .common import LLMParams, propose_programs, step_targets
from .registry import register_operator

PARAPHRASE_PROMPT = Prompt(
    """Reword the following instruction for a language model. Keep its meaning and every
requirement it states; you may make it clearer, more explicit or more concise.

Instruction:
{instruction}

Reply with JSON of the form {{"instruction": "..."}} and nothing else.""",
    doc="Asks for one reworded variant of an instruction (sampled n times).",
)


@register_operator
class Paraphrase(Operator):
    """`n` variants of each of the first `parents` candidates (demos and output format kept)."""

    name = "paraphrase"
    kind = "llm"
    description = "Diverse rewordings of a program's instruction (local search around it)."
    inputs = {"candidates": Port("Candidates", doc="programs to reword; the first `parents` are used")}
    outputs = {"candidates": Port("Candidates", doc="the variants (dropped replies left out)")}
    prompts = {"paraphrase": PARAPHRASE_PROMPT}

    class Params(LLMParams):
        temperature: float | None = Field(1.0, gt=0.0, le=2.0)
        n: int = Field(3, ge=1, le=32, description="variants per parent")
        parents: int = Field(1, ge=1, le=32, description="reword the first N candidates")
        min_chars: int = Field(10, ge=1, le=10000, description="shorter instructions are dropped")
        step: str = Field("", description='step to reword: "" the answer step, "each", or a name')

    def made(self) -> int:
        return self.params.n * self.params.parents  # at most: fewer when fewer candidates come in

    def optimizer_calls(self) -> int:
        return self.params.n * self.params.parents

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        parents = inputs["candidates"][: self.params.parents]
        requests = [
            (parent, self.prompt("paraphrase", instruction=parent.step(step).instruction), step)
            for parent in parents
            for step in step_targets(parent, self.params.step)
        ]
        out = await propose_programs(
            ctx, self.node_id, requests, self.params,
            per_request=self.params.n, min_chars=self.params.min_chars, duplicate="duplicate of another variant",
        )
        return {"candidates": out}
