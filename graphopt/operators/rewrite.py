"""rewrite: new programs from a program, its critiques and earlier attempts (TextGrad's update, OPRO's step).

The model is asked for `{"instruction": "..."}` against a JSON schema. A reply with no usable
instruction (unparseable, empty, too short, identical to the parent's, or a duplicate of another
proposal) is dropped with its reason in `ctx.dropped`; the step goes on with the others.
A new program keeps its parent's demos and output format. In a program of several steps it
edits one step (`step`: the one a critique blames, else the answering step; or each, or a name).
"""

from __future__ import annotations

__all__ = ["Rewrite"]

import re
from collections.abc import Collection
from typing import Any

from pydantic import Field

from ..types import Attempt, Feedback
from ..program.model import Program
from .base import Operator, Port, Prompt, StepContext
from .common import LLMParams, feedback_for, format_attempts, propose_programs, step_targets
from .registry import register_operator

REWRITE_PROMPT = Prompt(
    """You improve the instruction of a language-model program.

The current program:
{program}

{feedback}

{history}

Write a new, improved instruction for this program. Keep what works, fix what fails, and keep it
general so it works on new inputs. Reply with JSON of the form {{"instruction": "..."}} and nothing else.""",
    doc="The rewrite request; {feedback} and {history} are the filled sections below, or empty.",
)
FEEDBACK_SECTION = Prompt(
    "Feedback on the current program:\n{critiques}",
    doc="Shown when critiques are wired in.",
)
STEP_SECTION = Prompt(
    "The program has several steps. Write the new instruction of step {step} only.",
    doc="Shown for a program of several steps: which step's instruction to write.",
)
HISTORY_SECTION = Prompt(
    """Earlier instructions with their scores (higher is better), from worst to best:
{attempts}

Write an instruction that scores higher than all of them.""",
    doc="Shown when earlier attempts are wired in (OPRO's meta-prompt).",
)


def _tidy(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip()


@register_operator
class Rewrite(Operator):
    """Proposes `k` new programs for each of the first `parents` candidates."""

    name = "rewrite"
    kind = "llm"
    description = "Rewrites a program's instruction using critiques and/or scored earlier attempts."
    inputs = {
        "candidates": Port("Candidates", doc="programs to rewrite; the first `parents` are used"),
        "feedback": Port("Feedback", required=False, many=True, doc="critiques, matched to programs by id"),
        "history": Port("History", required=False, doc="earlier attempts with their scores"),
    }
    outputs = {"candidates": Port("Candidates", doc="the new programs (dropped replies left out)")}
    prompts = {"rewrite": REWRITE_PROMPT, "feedback": FEEDBACK_SECTION, "history": HISTORY_SECTION, "step": STEP_SECTION}

    class Params(LLMParams):
        k: int = Field(1, ge=1, le=32, description="new programs per parent")
        parents: int = Field(1, ge=1, le=32, description="rewrite the first N candidates")
        min_chars: int = Field(10, ge=1, le=10000, description="shorter instructions are dropped")
        max_history: int = Field(10, ge=1, le=100, description="best N attempts shown")
        step: str = Field("", description='step to edit: "" the one a critique blames (else the answer step), "each", or a name')

    def rendered_prompts(self, wired: Collection[str]) -> set[str]:
        """The request always; each section only when its input is wired.

        The step section is shown only for programs of several steps, so it is not counted.
        """
        return {"rewrite"} | ({"feedback", "history"} & set(wired))

    def _request(self, parent: Program, feedback: list[Feedback], history: list[Attempt], step: str | None) -> str:
        feedback_text = ""
        mine = feedback_for(parent, feedback)
        if mine:
            critiques = "\n\n".join(f.text for f in mine)
            feedback_text = self.prompt("feedback", critiques=critiques)
        history_text = ""
        if history:
            best = sorted(history, key=lambda a: a.score)[-self.params.max_history :]
            history_text = self.prompt("history", attempts=format_attempts(best))
        text = self.prompt("rewrite", program=parent.render(), feedback=feedback_text, history=history_text)
        if len(parent.steps) > 1:
            text += "\n\n" + self.prompt("step", step=parent.step(step).name)
        return _tidy(text)

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        feedback = inputs.get("feedback") or []
        history = inputs.get("history") or []
        parents = inputs["candidates"][: self.params.parents]
        requests = []
        for parent in parents:
            blamed = [f.step for f in feedback_for(parent, feedback) if f.step]
            for step in step_targets(parent, self.params.step, blamed):
                requests.append((parent, self._request(parent, feedback, history, step), step))
        out = await propose_programs(
            ctx, self.node_id, requests, self.params,
            per_request=self.params.k, min_chars=self.params.min_chars, duplicate="duplicate of another proposal",
        )
        return {"candidates": out}
