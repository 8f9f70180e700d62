"""Scoring a program's output on one example by its task's metric (shared by the step runner and
user pipelines, `graphopt.program.run` and `graphopt.program.pipeline`)."""

from __future__ import annotations

__all__ = ["scored_trace"]

from ..errors import LLMError
from ..lm import LM
from ..tasks.base import Task
from ..types import Example, StepTrace, Trace
from .model import Program


async def scored_trace(
    program: Program, example: Example, task: Task, lm: LM, text: str, steps: tuple[StepTrace, ...]
) -> Trace:
    """The trace of `program`'s output `text` on `example`, scored by the task's metric.

    A model metric (the judge) whose call failed after its retries leaves the example errored
    (score 0, the error in the trace), like a failed program call; what it said of the answer is
    kept in `Trace.metric_note`.

    Raises:
        LLMError: a fatal model error of the metric's level.
        BudgetExceeded: a cap of the metric's level was reached.
    """
    try:
        answer, scored = await task.ascore(program.answer_text(text), example, lm)
    except LLMError as exc:
        if exc.fatal:
            raise
        return Trace(example=example, output=text, answer="", score=0.0, error=f"metric: {exc}", steps=steps)
    return Trace(
        example=example, output=text, answer=answer, score=scored.score, metric_note=scored.note, steps=steps
    )
