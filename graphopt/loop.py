"""The inner loop: improve one program on a task by running an optimizer graph for a few steps.

Each step samples a minibatch of train examples (seeded), runs the current program on it, runs
the graph once on (program, traces, history), scores the distinct new candidates on the
acceptance examples and keeps the best one if the acceptance strategy agrees (by default only
a strict improvement: on a tie the incumbent stays, so an all-zero plateau cannot swap the seed
for junk). Test data is never read.

Why a dev split: the outer search ranks graphs by the validation score of the program the loop
returns. If the loop also chose that program on the same few validation examples, the score
would be the maximum of several noisy draws on them and every graph would look better than it
is, most of all the ones that try many candidates. So acceptance runs on a dev split carved
from the end of train (the minibatches come from the rest), and validation is read once, for
the program the loop returns (and for the start program, to report the gain). When train is
too small to spare a dev split (under `MIN_TRAIN_FOR_DEV` examples), acceptance falls back to
validation and the result says so (`accept_on`).

A loop can be run in rungs (the search's racing): a short first run scored on a few validation
examples (`final_ids`), perhaps scored again on more of them, and, for the graphs that go on, a
continuation (`resume=` the earlier result) that runs the remaining steps with the same dev split
and the same minibatch sequence and scores the full validation set. Rungs make the same steps as
one run, and a continuation scores only the validation examples its programs were not scored on
before (the earlier per-example scores are carried), so racing costs the winners nothing twice.

Example:
    >>> import asyncio
    >>> from graphopt.graph.io import load_graph
    >>> from graphopt.lm import LM
    >>> from graphopt.testing import FakeModel
    >>> from graphopt.tasks import get_task
    >>> task = get_task("word_sorting", difficulty="easy", sizes=(8, 4, 4))
    >>> lm = LM(transport=FakeModel(default='{"instruction": "Sort the words from A to Z."}'), cache_dir=None)
    >>> result = asyncio.run(optimize(task.seed_program, load_graph("tgd"), task, lm, LoopSizes(steps=1, minibatch=4)))
    >>> result.history[0].candidates[0].program.instruction, result.stopped
    ('Sort the words from A to Z.', None)
"""

from __future__ import annotations

__all__ = [
    "AcceptStrategy",
    "NoWorse",
    "Better",
    "ACCEPT_STRATEGIES",
    "CandidateRecord",
    "StepRecord",
    "OptimizeResult",
    "optimize",
    "LoopSizes",
    "MIN_TRAIN_FOR_DEV",
    "acceptance_split",
]

import asyncio
import dataclasses
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field

from .errors import BudgetExceeded, ConfigError, TaskError, did_you_mean
from .graph.compile import CompiledOptimizer, compile_graph
from .graph.spec import GraphSpec
from .sizes import LoopSizes
from .lm import LM, Ledger, sample_place, usage_scope
from .operators.base import StepContext
from .program.run import evaluate, run_program
from .tasks.base import Task
from .program.model import SCHEMA_VERSION, Program
from .types import Attempt, Example, Trace, mean_and_stderr


class AcceptStrategy(ABC):
    """Decides whether a candidate's validation score replaces the best one so far."""

    name = "custom"

    @abstractmethod
    def accepts(self, candidate: float, best: float) -> bool:
        """True when a candidate scoring `candidate` on validation should replace the best (`best`)."""


class NoWorse(AcceptStrategy):
    """Keep the candidate unless validation gets worse (ties move on, so plateaus are explored)."""

    name = "no_worse"

    def accepts(self, candidate: float, best: float) -> bool:
        return candidate >= best


class Better(AcceptStrategy):
    """Keep the candidate only if validation strictly improves."""

    name = "better"

    def accepts(self, candidate: float, best: float) -> bool:
        return candidate > best


ACCEPT_STRATEGIES: dict[str, AcceptStrategy] = {"no_worse": NoWorse(), "better": Better()}
DEFAULT_ACCEPT = "better"
MIN_TRAIN_FOR_DEV = 9


def acceptance_split(task: Task, val_limit: int | None) -> tuple[list[Example], list[Example], str]:
    """(minibatch pool, acceptance examples, "dev" or "val") for a loop on `task`.

    The dev split is the last third of train, at most as large as the validation set used.
    """
    val = task.val[:val_limit]
    train = list(task.train)
    if len(train) < MIN_TRAIN_FOR_DEV:
        return train, val, "val"
    n_dev = min(len(train) // 3, max(len(val), 4))
    return train[:-n_dev], train[-n_dev:], "dev"


def _accept_strategy(accept: str | AcceptStrategy) -> AcceptStrategy:
    if isinstance(accept, AcceptStrategy):
        return accept
    strategy = ACCEPT_STRATEGIES.get(accept)
    if strategy is None:
        raise ConfigError(
            f"unknown accept strategy {accept!r}{did_you_mean(accept, ACCEPT_STRATEGIES)}"
            f" (use {', '.join(ACCEPT_STRATEGIES)})"
        )
    return strategy


class CandidateRecord(BaseModel):
    """A program the graph returned in one step, with its scores (None: not measured).

    `val_score` is its score on the acceptance examples (the dev split, or validation when the
    loop had no dev split: see `OptimizeResult.accept_on`).
    """

    program: Program
    minibatch_score: float | None = None
    val_score: float | None = None


class StepRecord(BaseModel):
    """Everything one step did (what the meta prompt optimizer reads).

    Attributes:
        step: 1-based step number.
        minibatch: ids of the train examples of this step.
        current_id, current_minibatch_score: the program the step started from.
        candidates: what the exit node returned, with minibatch and validation scores.
        dropped: [{"node", "reason", "text"}] for replies the nodes could not use.
        accepted: id of the program kept as the new best, or None.
        best_val: best acceptance score (dev, or validation) after this step.
        usage: level -> usage (calls, tokens, cost, ...) spent in this step.
        node_outputs: node id -> summary of what it produced.
        error: why the step ended early ("" when it finished).
    """

    step: int
    minibatch: list[str] = Field(default_factory=list)
    current_id: str = ""
    current_minibatch_score: float | None = None
    candidates: list[CandidateRecord] = Field(default_factory=list)
    dropped: list[dict[str, str]] = Field(default_factory=list)
    accepted: str | None = None
    best_val: float | None = None
    usage: dict[str, Any] = Field(default_factory=dict)
    node_outputs: dict[str, Any] = Field(default_factory=dict)
    seconds: float = 0.0
    error: str = ""


class OptimizeResult(BaseModel):
    """The outcome of `optimize`.

    Attributes:
        best_program: the best program on validation (the seed if nothing beat it).
        best_val, initial_val: validation accuracy of it and of the start program (None if not
            measured because the budget ran out first); best_val_stderr: its standard error.
        val_scores: the best program's score on each validation example, by example id (paired
            comparisons between graphs use these); initial_val_scores: the start program's.
        accept_on: "dev" (a split carved from train) or "val": where candidates were accepted.
        best_dev: the best program's acceptance score (equal to best_val when accept_on is "val").
        initial_dev: the start program's acceptance score (a continuation needs it).
        val_limit: validation examples `best_val` is measured on.
        history: one record per step, including a step cut short by the budget.
        stopped: None when every step ran, "budget" when a cap ended the loop early.
        stop_reason: the budget message.
        graph: the name of the optimizer graph; usage: the run's usage per level.
        traces, errors: program runs made on train and validation examples, and how many of them
            failed at the provider after the client's retries (their score is not a measurement);
            first_error: the message of the first such failure.
    """

    schema_version: int = SCHEMA_VERSION
    best_program: Program
    best_val: float | None
    initial_val: float | None
    best_val_stderr: float | None = None
    val_scores: dict[str, float] = Field(default_factory=dict)
    initial_val_scores: dict[str, float] = Field(default_factory=dict)
    accept_on: str = "val"
    best_dev: float | None = None
    initial_dev: float | None = None
    val_limit: int = 0
    history: list[StepRecord] = Field(default_factory=list)
    stopped: str | None = None
    stop_reason: str = ""
    graph: str = ""
    usage: dict[str, Any] = Field(default_factory=dict)
    traces: int = 0
    errors: int = 0
    first_error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptimizeResult:
        return cls.model_validate(data)


class _Scorer:
    """Runs programs on examples, never twice on the same (program, example) within the loop."""

    def __init__(self, task: Task, lm: LM):
        self.task, self.lm = task, lm
        self.traces: dict[tuple[str, str], Trace] = {}
        self.val: dict[tuple[str, str], tuple[float, float]] = {}  # (program id, split) -> (accuracy, stderr)
        self.per_example: dict[tuple[str, str], dict[str, float]] = {}
        self.runs = 0
        self.errors: list[str] = []  # provider errors that outlived the client's retries

    def _count(self, traces: list[Trace]) -> None:
        self.runs += len(traces)
        self.errors.extend(t.error for t in traces if t.error)

    async def minibatch(self, program: Program, examples: list[Example]) -> list[Trace]:
        todo = [ex for ex in examples if (program.id, ex.id) not in self.traces]
        traces = await run_program(program, todo, self.task, self.lm)
        self._count(traces)
        for trace in traces:
            self.traces[(program.id, trace.example.id)] = trace
        return [self.traces[(program.id, ex.id)] for ex in examples]

    def know(self, program: Program, split: str, scores: dict[str, float]) -> None:
        """Per-example scores measured before (a resumed loop's): those examples are not run again."""
        self.per_example.setdefault((program.id, split), {}).update(scores)

    async def validation(self, program: Program, examples: list[Example], split: str = "val") -> float:
        key = (program.id, split)
        known = self.per_example.setdefault(key, {})
        todo = [ex for ex in examples if ex.id not in known]
        if todo:
            evaluation = await evaluate(program, todo, self.task, self.lm)
            self._count(evaluation.traces)
            known.update({t.example.id: t.score for t in evaluation.traces})
        self.val[key] = mean_and_stderr([known[ex.id] for ex in examples])
        return self.val[key][0]


async def optimize(
    program: Program,
    graph: GraphSpec | CompiledOptimizer,
    task: Task,
    lm: LM,
    sizes: LoopSizes | None = None,
    *,
    accept: str | AcceptStrategy = DEFAULT_ACCEPT,
    seed: int = 0,
    on_step: Callable[[StepRecord], None] | None = None,
    final_ids: tuple[str, ...] | None = None,
    resume: OptimizeResult | None = None,
) -> OptimizeResult:
    """Optimizes `program` on `task` with an optimizer graph.

    Every distinct candidate the graph's exit returns gets a validation run, so graphs that
    return many candidates should end in `select`.

    Args:
        program: the program to start from (usually `task.seed_program`).
        graph: a spec (compiled here, after validation) or an already compiled optimizer.
        task: supplies train (minibatches and the dev split) and val; test is not read.
        lm: the client for the program and optimizer levels.
        sizes: the loop's steps, minibatch and validation examples (`LoopSizes()`: 3 steps of
            8 examples, every validation example).
        accept: "better" (default: ties keep the incumbent), "no_worse" or an `AcceptStrategy`.
        seed: seeds the minibatch sampling.
        on_step: called with each step's record as soon as the step ends.
        final_ids: score the returned program on these validation examples only (a screen; ids
            among the first `sizes.val_limit`); the dev split is still sized by it, so a
            continuation matches.
        resume: an earlier result of this loop (same program, graph, sizes and seed) to continue
            from: its steps count towards `steps`, its best program and history are kept.

    Returns:
        The best program with its history. When a budget cap is reached the loop stops and
        returns the best program so far with `stopped="budget"`.

    Raises:
        SpecError: `graph` is an invalid spec.
        ConfigError: unknown accept strategy or a bad number.
        TaskError: the task has no train or validation examples.
    """
    strategy = _accept_strategy(accept)
    sizes = sizes or LoopSizes()
    steps, minibatch_size, val_limit = sizes.steps, sizes.minibatch, sizes.val_limit
    compiled = graph if isinstance(graph, CompiledOptimizer) else compile_graph(graph)
    val = task.val[:val_limit]
    if final_ids is not None:
        wanted = set(final_ids)
        val = [ex for ex in val if ex.id in wanted]
    if not val or not task.train:
        raise TaskError(f"task {task.name!r} needs train and validation examples to optimize")
    pool, accept_set, accept_on = acceptance_split(task, val_limit)
    # Operators see train without the dev split: a demo drawn from it would be scored on its own
    # example, and acceptance would favour the programs that show the most dev examples.
    seen_task = dataclasses.replace(task, train=pool) if accept_on == "dev" else task
    result = OptimizeResult(
        best_program=program, best_val=None, initial_val=None, graph=compiled.spec.name, accept_on=accept_on,
        val_limit=len(val),
    )
    run = _Run(compiled, seen_task, lm, _Scorer(task, lm), strategy, accept_set, accept_on, result)
    rng = random.Random(seed)
    # Usage scopes, not diffs of the client's ledger: other evaluations may share the client.
    with usage_scope() as spent:
        try:
            await run.start(program, resume, pool, minibatch_size, rng)
            for step in range(len(result.history) + 1, steps + 1):
                await run.step(step, rng.sample(pool, min(minibatch_size, len(pool))))
                if on_step is not None:
                    on_step(result.history[-1])
        except BudgetExceeded as exc:
            return await _finish(result, spent, run.scorer, program, val, exc)
        return await _finish(result, spent, run.scorer, program, val, None)


@dataclass
class _Run:
    """One inner loop's state: what a step reads and the result it fills."""

    compiled: CompiledOptimizer
    task: Task  # what the operators see: train without the dev split
    lm: LM
    scorer: _Scorer
    strategy: AcceptStrategy
    accept_set: list[Example]
    accept_on: str
    result: OptimizeResult
    attempts: list[Attempt] = field(default_factory=list)

    async def start(
        self, program: Program, resume: OptimizeResult | None, pool: list[Example], minibatch_size: int,
        rng: random.Random,
    ) -> None:
        """Scores the start on the acceptance split, or takes an earlier run's state (`resume`)."""
        if resume is not None and resume.initial_dev is not None:
            self.attempts = _resumed(self.result, resume, program, pool, minibatch_size, rng)
            self.scorer.know(resume.best_program, "val", resume.val_scores)
            self.scorer.know(program, "val", resume.initial_val_scores)
            return
        score = await self.scorer.validation(program, self.accept_set, self.accept_on)
        self.result.best_dev = self.result.initial_dev = score
        self.attempts = [Attempt(program=program, score=score, step=0)]

    async def step(self, step: int, minibatch: list[Example]) -> None:
        """One step, recorded in the result's history even when a budget cap cuts it short."""
        record = StepRecord(step=step, current_id=self.result.best_program.id)
        clock = time.perf_counter()
        with usage_scope() as step_spent, sample_place(f"step{step}"):
            try:
                await self._step(record, minibatch)
            except BudgetExceeded as exc:
                record.error = str(exc)
                raise
            finally:
                _close(record, step_spent, clock, self.result)

    async def _step(self, record: StepRecord, minibatch: list[Example]) -> None:
        result, scorer = self.result, self.scorer
        current = result.best_program
        record.minibatch = [ex.id for ex in minibatch]
        stalled = 0
        for earlier in reversed(result.history):
            if earlier.accepted is not None:
                break
            stalled += 1
        ctx = StepContext(lm=self.lm, task=self.task, minibatch=minibatch, step=record.step - 1, stalled=stalled)
        try:
            traces = await scorer.minibatch(current, minibatch)
            record.current_minibatch_score = ctx.scores[current.id] = sum(t.score for t in traces) / len(traces)
            outcome = await self.compiled.step(ctx, current, traces, list(self.attempts))
        finally:
            record.dropped = [{"node": d.node, "reason": d.reason, "text": d.text} for d in ctx.dropped]
            record.node_outputs = dict(ctx.node_outputs)
        distinct = list({c.id: c for c in outcome.candidates}.values())
        # Validation runs of the candidates overlap (an API model serves them concurrently);
        # acceptance then goes in the exit's order.
        scores = await asyncio.gather(*(scorer.validation(c, self.accept_set, self.accept_on) for c in distinct))
        for candidate, score in zip(distinct, scores):
            entry = CandidateRecord(program=candidate, minibatch_score=ctx.scores.get(candidate.id), val_score=score)
            record.candidates.append(entry)
            if candidate.id == current.id:
                continue
            self.attempts.append(Attempt(program=candidate, score=entry.val_score, step=record.step))
            if self.strategy.accepts(entry.val_score, result.best_dev):
                record.accepted = candidate.id
                result.best_program, result.best_dev = candidate, entry.val_score


def _resumed(
    result: OptimizeResult, earlier: OptimizeResult, start: Program, pool: list[Example], minibatch_size: int,
    rng: random.Random,
) -> list[Attempt]:
    """Puts an earlier run's state into `result` and returns its attempts; `rng` is moved past
    its minibatches, so the continuation samples what one uninterrupted run would have."""
    result.best_program, result.best_dev, result.initial_dev = earlier.best_program, earlier.best_dev, earlier.initial_dev
    result.history = [StepRecord.model_validate(r.model_dump()) for r in earlier.history]
    attempts = [Attempt(program=start, score=earlier.initial_dev, step=0)]
    for record in result.history:
        rng.sample(pool, min(minibatch_size, len(pool)))
        attempts += [
            Attempt(program=c.program, score=c.val_score, step=record.step)
            for c in record.candidates if c.program.id != record.current_id and c.val_score is not None
        ]
    return attempts


def _close(record: StepRecord, spent: Ledger, clock: float, result: OptimizeResult) -> None:
    record.usage = spent.to_dict()["levels"]
    record.seconds = round(time.perf_counter() - clock, 3)
    record.best_val = result.best_dev
    result.history.append(record)


async def _finish(
    result: OptimizeResult, spent: Ledger, scorer: _Scorer, start: Program, val: list[Example],
    exc: BudgetExceeded | None,
) -> OptimizeResult:
    """Scores the start and the returned program on validation, unless a cap stopped the loop."""
    if exc is None:
        try:
            await asyncio.gather(*(scorer.validation(p, val, "val") for p in {start.id: start, result.best_program.id: result.best_program}.values()))
        except BudgetExceeded as cut:
            exc = cut
    best, first = (result.best_program.id, "val"), (start.id, "val")
    if best in scorer.val:
        result.best_val, result.best_val_stderr = scorer.val[best]
        result.val_scores = {ex.id: scorer.per_example[best][ex.id] for ex in val}
    if first in scorer.val:
        result.initial_val = scorer.val[first][0]
        result.initial_val_scores = {ex.id: scorer.per_example[first][ex.id] for ex in val}
    if exc is not None:
        result.stopped, result.stop_reason = "budget", str(exc)
    result.usage = spent.to_dict()["levels"]
    result.traces, result.errors = scorer.runs, len(scorer.errors)
    result.first_error = scorer.errors[0] if scorer.errors else ""
    return result
