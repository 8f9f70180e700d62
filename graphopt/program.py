"""Running a prompt program on examples and scoring it.

Example:
    >>> import asyncio
    >>> from graphopt.lm import LM, FakeModel
    >>> from graphopt.tasks import get_task
    >>> task = get_task("word_sorting", sizes=(5, 5, 5))
    >>> lm = LM(transport=FakeModel(default="x"), cache_dir=None)
    >>> result = asyncio.run(evaluate(task.seed_program, task.val, task, lm))
    >>> result.accuracy
    0.0
"""

from __future__ import annotations

__all__ = ["run_program", "evaluate", "Evaluation"]

import asyncio
from dataclasses import dataclass

from .errors import LLMError
from .lm import LM
from .tasks.base import Task
from .types import Example, Program, Trace, mean_and_stderr


@dataclass(frozen=True)
class Evaluation:
    """Traces of one program on some examples, with accuracy and its standard error."""

    program: Program
    traces: list[Trace]

    @property
    def scores(self) -> list[float]:
        return [t.score for t in self.traces]

    @property
    def accuracy(self) -> float:
        return mean_and_stderr(self.scores)[0]

    @property
    def stderr(self) -> float:
        return mean_and_stderr(self.scores)[1]

    def to_dict(self) -> dict:
        return {
            "program": self.program.model_dump(),
            "accuracy": self.accuracy,
            "stderr": self.stderr,
            "n": len(self.traces),
            "traces": [t.model_dump() for t in self.traces],
        }


async def _run_one(program: Program, example: Example, task: Task, lm: LM, level: str) -> Trace:
    try:
        # The task's answer length applies unless the level sets its own max_tokens.
        max_tokens = None if lm.config.level(level).max_tokens else task.max_tokens
        completion = await lm.complete(level, program.messages(example.input), stop=task.stop, max_tokens=max_tokens)
    except LLMError as exc:
        # One failed example scores 0 with the reason kept; the evaluation goes on.
        return Trace(example=example, output="", answer="", score=0.0, error=str(exc))
    answer, score = task.score(completion.text, example)
    return Trace(example=example, output=completion.text, answer=answer, score=score)


async def run_program(
    program: Program, examples: list[Example], task: Task, lm: LM, *, level: str = "program"
) -> list[Trace]:
    """Runs `program` on every example concurrently (the client bounds the concurrency).

    Raises:
        BudgetExceeded: a cap was reached; traces finished before it are lost only for this call.
    """
    # A window of twice the model's concurrency keeps it busy while the rest wait here, before
    # any work: 500 examples must not all build and look up their requests before the first
    # one is sent.
    window = asyncio.Semaphore(2 * lm.config.level(level).concurrency)

    async def one(example: Example) -> Trace:
        async with window:
            return await _run_one(program, example, task, lm, level)

    results = await asyncio.gather(*(one(ex) for ex in examples), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):  # BudgetExceeded first in order, like any other
            raise result
    return list(results)  # type: ignore[arg-type]


async def evaluate(program: Program, examples: list[Example], task: Task, lm: LM) -> Evaluation:
    """Runs and scores `program` on `examples`."""
    return Evaluation(program, await run_program(program, examples, task, lm))
