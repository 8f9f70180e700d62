"""Running a prompt program on examples and scoring it.

Example:
    >>> import asyncio
    >>> from graphopt.lm import LM
    >>> from graphopt.testing import FakeModel
    >>> from graphopt.tasks import get_task
    >>> task = get_task("word_sorting", sizes=(5, 5, 5))
    >>> lm = LM(transport=FakeModel(default="x"), cache_dir=None)
    >>> result = asyncio.run(evaluate(task.seed_program, task.val, task, lm))
    >>> result.accuracy
    0.0
"""

from __future__ import annotations

__all__ = ["run_program", "evaluate", "target_logprobs", "scorable_by_likelihood", "Evaluation", "ErrorTally", "error_tally"]

import asyncio
import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass, field

from .answer_format import FORMAT_TOKENS
from ..errors import LLMError
from ..lm import LM
from ..lm.ledger import usage_scope
from ..tasks.base import Task
from .model import REASON_TOKENS, Program
from .retrieval import step_messages
from .pipeline import run_pipeline
from .score import scored_trace
from ..types import Example, StepTrace, Trace, mean_and_stderr


@dataclass(frozen=True)
class Evaluation:
    """Traces of one program on some examples, with accuracy and its standard error.

    An example whose model call failed after its retries scores 0 and keeps the error in its
    trace; `errors` counts them, so a caller can refuse a result that is mostly failures.
    `per_example` is what running the program cost per example ({"calls", "tokens"} of its
    level, cache hits included: a vote of 3 makes 3 calls per example, cached or not); empty when
    not measured.
    """

    program: Program
    traces: list[Trace]
    per_example: dict[str, float] = field(default_factory=dict)

    @property
    def scores(self) -> list[float]:
        return [t.score for t in self.traces]

    @property
    def errors(self) -> int:
        """How many examples have no answer because their model call failed (after retries)."""
        return sum(1 for t in self.traces if t.error)

    @property
    def error_rate(self) -> float:
        """`errors` as a share of the examples (0.0 for no examples)."""
        return self.errors / len(self.traces) if self.traces else 0.0

    @property
    def first_error(self) -> str:
        """The error of the first errored trace, or ""."""
        return next((t.error for t in self.traces if t.error), "")

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
            "errors": self.errors,
            "traces": [t.model_dump() for t in self.traces],
        }


@dataclass
class ErrorTally:
    """Examples run and examples errored (model call failed after its retries) inside an `error_tally`."""

    examples: int = 0
    errors: int = 0
    first_error: str = ""

    @property
    def error_rate(self) -> float:
        """`errors` as a share of `examples` (0.0 before any example)."""
        return self.errors / self.examples if self.examples else 0.0

    def add(self, traces: list[Trace]) -> None:
        self.examples += len(traces)
        for trace in traces:
            if trace.error:
                self.errors += 1
                self.first_error = self.first_error or trace.error


_TALLIES: contextvars.ContextVar[tuple[ErrorTally, ...]] = contextvars.ContextVar("graphopt_error_tallies", default=())


@contextlib.contextmanager
def error_tally() -> Iterator[ErrorTally]:
    """Counts every example `run_program` runs in this context (and the tasks it starts), and those errored.

    A command uses it to stop when too many calls fail (`--max-error-rate`), whichever code ran them.

    Example:
        >>> import asyncio
        >>> from graphopt.lm import LM
        >>> from graphopt.testing import FakeModel
        >>> from graphopt.tasks import get_task
        >>> task = get_task("word_sorting", sizes=(5, 5, 5))
        >>> lm = LM(transport=FakeModel(default="x"), cache_dir=None)
        >>> with error_tally() as tally:
        ...     _ = asyncio.run(evaluate(task.seed_program, task.val, task, lm))
        >>> (tally.examples, tally.errors)
        (5, 0)
    """
    tally = ErrorTally()
    token = _TALLIES.set((*_TALLIES.get(), tally))
    try:
        yield tally
    finally:
        _TALLIES.reset(token)


async def _run_one(
    program: Program, example: Example, task: Task, lm: LM, level: str, temperature: float | None = None
) -> Trace:
    if program.vote:
        return await _run_vote(program, example, task, lm, level, temperature)
    if program.pipeline:
        return await run_pipeline(program, example, task, lm, level)
    outputs: dict[str, str] = {}
    seen: list[StepTrace] = []
    try:
        for step in program.steps:
            last = step is program.answer_step
            step_input = step.render_input(example.input, outputs)
            # The task's answer length applies to the answering step unless the step or the level
            # sets its own; earlier steps get room to reason.
            default = task.max_tokens if last else REASON_TOKENS
            constraint = step.answer_format
            if constraint and default is not None:
                default += FORMAT_TOKENS
            max_tokens = None if lm.config.level(level).max_tokens else (step.max_tokens or default)
            completion = await lm.complete(
                level, await step_messages(step, step_input, lm, level), stop=task.stop if last else None, max_tokens=max_tokens,
                temperature=temperature, response_format=constraint.response_format() if constraint else None,
            )
            outputs[step.name] = completion.text
            seen.append(StepTrace(name=step.name, input=step_input, output=completion.text))
    except LLMError as exc:
        if exc.fatal:  # a bad key or model fails every call alike: stop instead of scoring zeros
            raise
        # The call outlived its retries: the example scores 0, the error is kept in its trace
        # (counted by Evaluation.errors), and the evaluation goes on.
        return Trace(example=example, output="", answer="", score=0.0, error=str(exc), steps=_steps(program, seen))
    return await scored_trace(program, example, task, lm, outputs[program.answer_step.name], _steps(program, seen))


def vote_key(answer: str) -> str:
    """What two voters must share to count as the same answer: the extracted answer, case and spacing aside."""
    return " ".join(answer.split()).lower()


async def _run_vote(
    program: Program, example: Example, task: Task, lm: LM, level: str, temperature: float | None
) -> Trace:
    """Every voter answers; the majority of the extracted answers wins, ties to the earliest voter.

    A voter whose call failed has no vote. When half the voters or more failed there is no vote
    worth the name: the first failed voter's trace is returned (score 0, its error kept), so the
    failure counts against the error rate instead of a minority answering for the vote.
    """
    voters = [program.model_copy(update={"vote": ()}), *program.vote]
    traces = await asyncio.gather(*(_run_one(v, example, task, lm, level, temperature) for v in voters))
    failed = [t for t in traces if t.error]
    if 2 * len(failed) >= len(traces):
        return failed[0]
    counts: dict[str, int] = {}
    for trace in traces:
        if not trace.error:
            counts[vote_key(trace.answer)] = counts.get(vote_key(trace.answer), 0) + 1
    top = max(counts.values())
    chosen = next(t for t in traces if not t.error and counts[vote_key(t.answer)] == top)
    steps = tuple(StepTrace(name=f"voter{i}", input=example.input, output=t.output) for i, t in enumerate(traces, 1))
    return chosen.model_copy(update={"steps": steps})


def _steps(program: Program, seen: list[StepTrace]) -> tuple[StepTrace, ...]:
    """The step traces worth keeping: none for a flat one-step program (its output is the trace's)."""
    return () if program.is_flat else tuple(seen)


async def run_program(
    program: Program, examples: list[Example], task: Task, lm: LM, *, level: str = "program",
    temperature: float | None = None,
) -> list[Trace]:
    """Runs `program` on every example concurrently (the client bounds the concurrency).

    An example whose call failed after its retries gets a trace with `error` set and score 0.
    `temperature` (None: the level's setting) above 0 makes each run a fresh sample.

    Raises:
        BudgetExceeded: a cap was reached; traces finished before it are lost only for this call.
        LLMError: a fatal model error (`LLMError.fatal`: bad key, unknown model, refused request).
    """
    # A window of twice the model's concurrency keeps it busy while the rest wait here, before
    # any work: 500 examples must not all build and look up their requests before the first
    # one is sent.
    window = asyncio.Semaphore(2 * lm.config.level(level).concurrency)

    fatal: list[LLMError] = []

    async def one(example: Example) -> Trace:
        async with window:
            if fatal:  # every later call would fail alike: do not make them
                raise fatal[0]
            try:
                return await _run_one(program, example, task, lm, level, temperature)
            except LLMError as exc:  # _run_one lets only fatal errors through
                fatal.append(exc)
                raise

    results = await asyncio.gather(*(one(ex) for ex in examples), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):  # BudgetExceeded first in order, like any other
            raise result
    traces: list[Trace] = list(results)  # type: ignore[arg-type]
    for tally in _TALLIES.get():
        tally.add(traces)
    return traces


def scorable_by_likelihood(programs: list[Program], lm: LM) -> bool:
    """Whether every program can be scored by the log-probability of the targets: a program model
    that scores answers, and programs whose answer is one call's whole reply (`Program.one_call`)."""
    return lm.can_score("program") and all(p is not None and p.one_call for p in programs)


async def target_logprobs(program: Program, examples: list[Example], lm: LM) -> dict[str, float]:
    """Example id -> the mean log-probability of its target as `program`'s reply (the program
    level's model); check `scorable_by_likelihood` first."""
    reply = program.answer_step.reply
    first = program.steps[0]
    messages = await asyncio.gather(*(step_messages(first, first.render_input(ex.input, {}), lm, "program") for ex in examples))
    values = await asyncio.gather(*(lm.logprob("program", m, reply(ex.target)) for m, ex in zip(messages, examples)))
    return {ex.id: value for ex, value in zip(examples, values)}


async def evaluate(program: Program, examples: list[Example], task: Task, lm: LM) -> Evaluation:
    """Runs and scores `program` on `examples`, with its cost per example (`Evaluation.per_example`)."""
    with usage_scope() as used:
        traces = await run_program(program, examples, task, lm)
    spent = used.level("program")
    n = max(len(examples), 1)
    cost = {"calls": (spent.calls + spent.cache_hits) / n, "tokens": (spent.tokens + spent.cached_tokens) / n}
    return Evaluation(program, traces, cost)
