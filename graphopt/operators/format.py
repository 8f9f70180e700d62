"""format: holds programs' answers to a format read from the train targets. No model call.

The answering step then replies `{"answer": ...}` under a JSON Schema (see
`graphopt.program.answer_format`): one of the labels seen in train ("choices"), only the characters the
targets use ("charset"), or any short text ("free"); `answers: auto` picks the tightest that fits
the targets. The embedded model is held to it by a grammar, OpenAI-compatible servers by
`response_format`; elsewhere the format instruction in the system prompt is all there is. The
programs' demos are cut to their answers (the task's extractor), so they show the format too.
A program that reasons before an answer marker, runs a user pipeline, or a task read as JSON
already, is left alone.
"""

from __future__ import annotations

__all__ = ["Format"]

from typing import Any, Literal

from pydantic import ConfigDict, Field

from ..program.answer_format import infer_format
from ..program.model import Demo, Program
from .base import Dropped, Operator, OperatorParams, Port, StepContext
from .registry import register_operator


@register_operator
class Format(Operator):
    """The first `parents` candidates, their answers held to a format the train targets call for."""

    name = "format"
    kind = "data"
    description = ("Holds answers to a format from the train targets (label set, character set or short text): "
                   "a grammar or response_format where the model supports it, an instruction elsewhere.")
    inputs = {"candidates": Port("Candidates", doc="programs to constrain; the first `parents` are used")}
    outputs = {"candidates": Port("Candidates", doc="the constrained programs")}
    prompts = {}

    class Params(OperatorParams):
        model_config = ConfigDict(extra="forbid", frozen=True)

        answers: Literal["auto", "choices", "charset", "free"] = Field(
            "auto", description="what an answer may be: a seen label, seen characters, any text, or the tightest that fits")
        max_choices: int = Field(12, ge=2, le=64, description="most labels a choices format holds")
        parents: int = Field(8, ge=1, le=32, description="constrain the first N candidates")

    def made(self) -> int:
        return 0  # holds the programs it is given to a format

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        rule = ctx.task.extract_rule.split(":", 1)[0]
        if rule == "json":
            ctx.dropped.append(Dropped(self.node_id, "the task reads its answers as JSON already"))
            return {"candidates": []}
        fmt = infer_format([ex.target for ex in ctx.task.train], self.params.answers, max_choices=self.params.max_choices)
        if fmt is None:
            ctx.dropped.append(Dropped(self.node_id, f"the train targets do not fit a {self.params.answers} format"))
            return {"candidates": []}
        out = []
        for parent in inputs["candidates"][: self.params.parents]:
            why = _unfit(parent)
            if why:
                ctx.dropped.append(Dropped(self.node_id, why))
                continue
            step = parent.answer_step
            changes: dict[str, Any] = {"answer_format": fmt, "demos": tuple(_answer_only(d, ctx) for d in step.demos)}
            if step.retrieve:
                pool = tuple(_answer_only(d, ctx) for d in step.retrieve.pool)
                changes["retrieve"] = step.retrieve.model_copy(update={"pool": pool})
            program = parent.with_step(None, **changes)
            if program.id == parent.id:
                ctx.dropped.append(Dropped(self.node_id, "the program has this answer format already"))
                continue
            out.append(program)
        return {"candidates": out}


def _unfit(program: Program) -> str:
    if program.answer_marker:
        return "the program reasons before its answer marker: an answer-only format would cut that"
    if program.pipeline:
        return "a user pipeline runs the program's steps"
    if program.vote:
        return "a vote: constrain its voters before voting"
    return ""


def _answer_only(demo: Demo, ctx: StepContext) -> Demo:
    """A demo showing only its answer: what the format lets the model write."""
    answer = ctx.task.extract(demo.output)
    return demo.model_copy(update={"output": answer or demo.output.strip()})
