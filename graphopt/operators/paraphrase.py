"""paraphrase: `n` reworded variants of a program's instruction (sampled, temperature > 0).

Each variant is a separate sample of the same request; the LM client keeps repeated identical
requests at temperature > 0 distinct. Unusable or duplicate replies are dropped with a reason.
"""

from __future__ import annotations

__all__ = ["Paraphrase"]

import asyncio
from typing import Any

from pydantic import Field

from ..types import Program
from .base import Dropped, Operator, Port, Prompt, StepContext
from .common import LLMParams, propose_instruction
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
        parents: int = Field(1, ge=1, description="reword the first N candidates")
        min_chars: int = Field(10, ge=1, description="shorter instructions are dropped")

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        jobs = []
        for parent in inputs["candidates"][: self.params.parents]:
            request = self.prompt("paraphrase", instruction=parent.instruction)
            for _ in range(self.params.n):
                jobs.append((parent, propose_instruction(
                    ctx, self.node_id, request, parent.instruction, self.params, min_chars=self.params.min_chars
                )))
        proposals = await asyncio.gather(*(job for _, job in jobs))
        out: list[Program] = []
        seen: set[str] = set()
        for (parent, _), instruction in zip(jobs, proposals):
            if instruction is None:
                continue
            program = parent.with_instruction(instruction)
            if program.id in seen:
                ctx.dropped.append(Dropped(self.node_id, "duplicate of another variant", instruction))
                continue
            seen.add(program.id)
            out.append(program)
        return {"candidates": out}
