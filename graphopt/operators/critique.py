"""critique: textual feedback on why a program fails on the minibatch (TextGrad's "gradient").

Which traces a critique reads:
    `traces`, when wired, are the minibatch traces of the FIRST candidate (wire `input.program`
    and `input.traces` together, as the built-in graphs do). Any other candidate critiqued, and
    the first one when `traces` is not wired, is run on the minibatch with the program model
    first, so a critique never reads another program's outputs.
"""

from __future__ import annotations

__all__ = ["Critique", "blamed_step"]

import asyncio
import re
from collections.abc import Collection
from typing import Any

from pydantic import Field

from ..program.run import run_program
from ..types import Feedback, Trace
from ..program.model import Program
from .base import Dropped, Operator, Port, Prompt, StepContext
from .common import LLMParams, ask, format_traces
from .registry import register_operator

CRITIQUE_PROMPT = Prompt(
    """You are helping improve the instruction of a language-model program.

The program:
{program}

It was run on {n} examples and answered {n_correct} correctly.

Examples it got wrong:
{failures}

Examples it got right:
{successes}

Explain briefly why the program fails on the wrong examples and what should change in its
instruction (or output format) so it answers them correctly. Be concrete and general: the advice
must help on new inputs too. Do not write the new instruction itself.""",
    doc="Asks for a critique of one program; filled with its text and some failing and correct traces.",
    types={"n": int, "n_correct": int},
)


BLAME_SECTION = Prompt(
    """The program has several steps ({steps}); their outputs are shown for each example.
Begin your reply with one line "Step: NAME", naming the step whose instruction should change.""",
    doc="Shown for a program of several steps: asks which step to blame.",
)
_BLAME_LINE = re.compile(r"^\W*step\W*:\s*\W*([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


def blamed_step(reply: str, names: list[str]) -> tuple[str, str]:
    """The step a critique names on its first line ("Step: reason"), and the rest of the critique.

    Returns:
        (step name or "" when the first line names no step of the program, the critique text).
    """
    first, _, rest = reply.strip().partition("\n")
    match = _BLAME_LINE.match(first)
    if match and match.group(1) in names:
        return match.group(1), (rest.strip() or first.strip())
    return "", reply.strip()


@register_operator
class Critique(Operator):
    """Writes one critique per candidate (the first `max_candidates`) from its minibatch failures.

    A candidate with no failure gets no model call and no feedback.
    """

    name = "critique"
    kind = "llm"
    description = "Textual feedback on a program's failures on the minibatch."
    inputs = {
        "candidates": Port("Candidates", doc="programs to critique; the first comes first"),
        "traces": Port("Traces", required=False, doc="minibatch traces of the first candidate"),
    }
    outputs = {"feedback": Port("Feedback", doc="one critique per critiqued candidate")}
    prompts = {"critique": CRITIQUE_PROMPT, "blame": BLAME_SECTION}

    def rendered_prompts(self, wired: Collection[str]) -> set[str]:
        """The critique; the blame section only shows for programs of several steps, so it is not counted."""
        return {"critique"}

    class Params(LLMParams):
        max_candidates: int = Field(1, ge=1, le=32, description="critique the first N candidates")
        max_failures: int = Field(3, ge=1, le=64, description="failing traces shown")
        max_successes: int = Field(1, ge=0, le=64, description="correct traces shown")

    async def _traces(self, ctx: StepContext, program: Program, given: list[Trace] | None) -> list[Trace]:
        if given is not None:
            return given
        traces = await run_program(program, ctx.minibatch, ctx.task, ctx.lm)
        ctx.scores.setdefault(program.id, sum(t.score for t in traces) / max(len(traces), 1))
        return traces

    async def _critique(self, ctx: StepContext, program: Program, given: list[Trace] | None) -> Feedback | None:
        traces = await self._traces(ctx, program, given)
        failures = [t for t in traces if not t.correct]
        if not failures:
            return None
        successes = [t for t in traces if t.correct]
        prompt = self.prompt(
            "critique",
            program=program.render(),
            n=len(traces),
            n_correct=len(successes),
            failures=format_traces(failures[: self.params.max_failures]),
            successes=format_traces(successes[: self.params.max_successes]),
        )
        names = [s.name for s in program.steps]
        if len(names) > 1:
            prompt += "\n\n" + self.prompt("blame", steps=", ".join(names))
        reply = await ask(ctx, self.node_id, prompt, self.params)
        if reply is None:
            return None
        if not reply.strip():
            ctx.dropped.append(Dropped(self.node_id, "empty critique"))
            return None
        step, text = blamed_step(reply, names) if len(names) > 1 else ("", reply.strip())
        return Feedback(program_id=program.id, text=text, step=step)

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        programs = inputs["candidates"][: self.params.max_candidates]
        given = inputs.get("traces")
        results = await asyncio.gather(
            *(self._critique(ctx, p, given if i == 0 else None) for i, p in enumerate(programs))
        )
        return {"feedback": [f for f in results if f is not None]}
