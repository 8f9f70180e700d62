"""The fitness of an optimizer graph: the validation score the inner loop reaches with it.

`Evaluator` is the driver's side of an evaluation: it registers each graph in the run store (with
its lineage), reuses a finished evaluation of the same canonical hash (in this run or after
`--resume`: the store is the source of truth), and hands the rest to an executor as units of
work that run concurrently, each with its own usage account. Only the evaluator writes the
store. `evaluate_many` registers a batch in order before running any of it, so candidate ids do
not depend on which evaluation finishes first.
"""

from __future__ import annotations

__all__ = ["Fitness", "Evaluator", "EvalRequest"]

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import RunError
from ..graph.spec import GraphSpec
from ..lm import LM
from ..store import RunStore
from ..tasks.base import Task
from ..types import Program
from .admission import UnitEstimate, estimate_unit, headroom, waves
from .archive import Scored, graph_hash
from .budgets import SearchBudget
from .executor import Executor, LocalExecutor, default_parallel
from .journal import Journal
from .unit import EvalUnit, UnitResult


@dataclass(frozen=True)
class Fitness:
    """One graph's evaluation.

    Attributes:
        status: "done", "partial" (cut by a budget cap) or "failed" (see `reason`).
        val_score: the validation score (None when there is none: failed, or cut before it).
        cost_tokens: tokens of every model call the evaluation needed, answered from the response
            cache or not, so graphs scored later are not made to look cheaper by earlier ones.
        history: the inner loop's step records (each a dict), read by the meta prompt optimizer.
        val_scores: the score on each validation example (the store's score matrix row).
        from_store: True when a finished evaluation in the store was reused.
    """

    spec: GraphSpec
    candidate_id: str
    graph_hash: str
    val_score: float | None
    val_stderr: float
    cost_tokens: float
    program: Program | None
    history: list[dict[str, Any]] = field(default_factory=list)
    from_store: bool = False
    status: str = "done"
    reason: str = ""
    val_scores: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True for a finished evaluation: the only kind the search builds on."""
        return self.status == "done" and self.val_score is not None

    def scored(self, generation: int = 0) -> Scored:
        return Scored(
            self.spec, self.graph_hash, self.val_score or 0.0, self.cost_tokens, self.candidate_id, generation,
            per_example=self.val_scores or None,
        )


@dataclass(frozen=True)
class EvalRequest:
    """A graph to evaluate and where it came from (its store lineage)."""

    spec: GraphSpec
    parents: tuple[str, ...] = ()
    origin: str = "seed"
    mutation: str | None = None
    generation: int = 0


def _work_tokens(usage: dict[str, Any]) -> float:
    levels = usage.get("levels", {})
    return float(sum(u.get("tokens", 0) + u.get("cached_tokens", 0) for u in levels.values()))


class Evaluator:
    """Scores graphs by running the inner loop as units on an executor, with the store as cache.

    Args:
        task: the task; the inner loop reads train and val only.
        lm: the client (used to build the default executor and to flush usage to the store).
        store: the run store (already `ensure_run`).
        budget: loop sizes (inner steps, minibatch, val examples).
        seed_program: the program every graph starts from.
        seed: the inner loop's seed.
        on_result: called with each Fitness (for progress displays).
        executor: runs the units; default a `LocalExecutor` with `default_parallel(lm)` slots.
        max_error_rate: the share of model calls (all levels) that may fail at the provider after
            the client's retries before the search stops instead of choosing among failures.
        provider_retries: times a unit whose model calls failed at the provider is run again
            before it is recorded as failed.
    """

    def __init__(
        self,
        task: Task,
        lm: LM,
        store: RunStore,
        budget: SearchBudget,
        seed_program: Program,
        *,
        seed: int = 0,
        on_result: Callable[[Fitness], None] | None = None,
        executor: Executor | None = None,
        max_error_rate: float = 0.02,
        provider_retries: int = 1,
    ):
        self.task = task
        self.lm = lm
        self.store = store
        self.budget = budget
        self.seed_program = seed_program
        self.seed = seed
        self.on_result = on_result
        self.executor = executor or LocalExecutor(task, lm, default_parallel(lm))
        self.max_error_rate = max_error_rate
        self.provider_retries = provider_retries
        self.scored_now = 0
        self.reused = 0
        self.failed = 0
        self.exhausted = ""  # the budget message once a cap cut an evaluation
        self._inflight: dict[str, asyncio.Future] = {}
        self.journal = Journal(store)

    def register(
        self,
        spec: GraphSpec,
        *,
        parents: Sequence[str] = (),
        origin: str = "seed",
        mutation: str | None = None,
        generation: int = 0,
    ):
        """Adds the graph to the store (idempotent by canonical hash) and returns its row."""
        return self.store.add_candidate(
            spec.model_dump(mode="json"),
            graph_hash(spec),
            parents=list(parents),
            origin=origin,
            mutation=mutation,
            generation=generation,
            name=spec.name,
        )

    def request_of(self, candidate_id: str) -> EvalRequest:
        """The request that registered a stored candidate (a journal entry replayed on resume)."""
        row = self.store.candidate(candidate_id)
        if row is None:
            raise RunError(f"the run's journal names candidate {candidate_id!r}, which the store lacks")
        return EvalRequest(GraphSpec.model_validate(row.spec), tuple(row.parents or ()), row.origin, row.mutation, row.generation)

    async def evaluate(
        self,
        spec: GraphSpec,
        *,
        parents: Sequence[str] = (),
        origin: str = "seed",
        mutation: str | None = None,
        generation: int = 0,
    ) -> Fitness:
        """The graph's fitness, from the store when it was scored before, else by running it.

        Raises:
            LLMError: a fatal provider error (the evaluation stays "running" until a resume).
            RunError: the run's share of failed provider calls passed `max_error_rate`.
        """
        (fitness,) = await self.evaluate_many([EvalRequest(spec, tuple(parents), origin, mutation, generation)])
        return fitness

    async def evaluate_many(self, requests: Sequence[EvalRequest]) -> list[Fitness]:
        """Evaluates a batch concurrently; the results come back in the order of `requests`.

        Under a call or token cap the batch runs in waves that fit the budget left (see
        `admission`), so a cap cuts as few evaluations as possible.
        """
        rows = [
            self.register(r.spec, parents=r.parents, origin=r.origin, mutation=r.mutation, generation=r.generation)
            for r in requests
        ]
        results: list[Fitness | None] = [None] * len(rows)
        todo = list(range(len(rows)))
        while todo:
            room = headroom(self.lm)
            estimates = [None if self.store.done_evaluation(rows[i].id) else self._estimate(rows[i]) for i in todo]
            wave = [todo[j] for j in waves(estimates, room)]
            for i, fitness in zip(wave, await asyncio.gather(*(self._fitness(rows[i]) for i in wave))):
                results[i] = fitness
            todo = [i for i in todo if i not in wave]
        return results  # type: ignore[return-value]

    def _estimate(self, row: Any) -> UnitEstimate:
        messages = self.seed_program.messages(self.task.train[0].input) if self.task.train else []
        prompt = sum(len(m["content"]) for m in messages) // 4 + (self.task.max_tokens or 32)
        return estimate_unit(GraphSpec.model_validate(row.spec), self.budget, prompt)

    async def _fitness(self, row: Any) -> Fitness:
        done = self.store.done_evaluation(row.id)
        if done is not None:
            self.reused += 1
            return self._report(self.fitness_of(row, done, from_store=True))
        running = self._inflight.get(row.graph_hash)
        if running is not None:  # the same graph twice in one batch: run it once
            return await asyncio.shield(running)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[row.graph_hash] = future
        try:
            fitness = await self._run(row)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: joiners re-raise it themselves
            raise
        else:
            future.set_result(fitness)
        finally:
            self._inflight.pop(row.graph_hash, None)
        return fitness

    async def _run(self, row: Any) -> Fitness:
        spec = GraphSpec.model_validate(row.spec)
        unit = EvalUnit(
            row.id, spec, self.seed_program, self.budget.inner_steps, self.budget.minibatch,
            self.budget.val_limit, self.seed,
        )
        # Store writes run in a worker thread: a slow database (a remote PostgreSQL) does not
        # hold up the event loop that drives the other evaluations in flight.
        await asyncio.to_thread(self.store.start_evaluation, row.id)
        outcome = await self.executor.run(unit)
        for _ in range(self.provider_retries):
            if not outcome.provider_failed:
                break
            # Calls that outlived the client's retries: run the unit again (its finished calls
            # come from the cache when there is one) before recording a failure.
            self._check_error_rate(outcome)
            outcome = await self.executor.run(unit)
        fitness = await asyncio.to_thread(self._record, row, outcome, spec)
        if outcome.status == "done":
            self.scored_now += 1
        elif outcome.status == "partial":
            self.exhausted = self.exhausted or outcome.reason
        else:
            self.failed += 1
        self._report(fitness)
        self._check_error_rate(outcome)
        return fitness

    def _record(self, row: Any, outcome: UnitResult, spec: GraphSpec) -> Fitness:
        """Writes the unit's outcome and the spend so far, and reads the evaluation back (in a thread)."""
        self._write(row.id, outcome)
        if outcome.status == "failed":
            self.store.add_event("evaluation_failed", {"candidate": row.id, "reason": outcome.reason})
        self.store.record_ledger(self.lm.ledger)
        return self.fitness_of(row, self.store.evaluation(row.id), from_store=False, spec=spec)

    def _write(self, cid: str, outcome: UnitResult) -> None:
        """Stores a unit's outcome: a score only for done or partial work, a reason for failures."""
        result = outcome.result
        if outcome.status == "done" and (result is None or result.get("best_val") is None):
            outcome.status, outcome.reason = "failed", "the inner loop returned no validation score"
        if outcome.status == "failed" or result is None:
            self.store.fail_evaluation(cid, outcome.reason or "no result", usage=outcome.usage,
                                       status="partial" if outcome.status == "partial" else "failed")
            return
        self.store.finish_evaluation(
            cid,
            val_score=result.get("best_val"),
            val_stderr=result.get("best_val_stderr"),
            val_scores=result.get("val_scores") or None,
            program=result.get("best_program"),
            history=result.get("history", []),
            usage=outcome.usage,
            status=outcome.status,
            note=outcome.reason or None,
        )

    def _check_error_rate(self, outcome: UnitResult) -> None:
        """Raises RunError when the share of calls that failed for good passes `max_error_rate`."""
        usage = self.lm.ledger.total()
        failures, calls = usage.failures, usage.calls + usage.failures
        if not failures or failures <= self.max_error_rate * calls:
            return
        raise RunError(
            f"{failures} of {calls} model calls failed at the provider after retries"
            f" ({failures / calls:.1%}, above --max-error-rate {self.max_error_rate:g}); last: {outcome.reason[:200]};"
            " fix the provider (or raise --max-error-rate) and continue with --resume"
        )

    def fitness_of(self, row: Any, evaluation: Any, *, from_store: bool, spec: GraphSpec | None = None) -> Fitness:
        """The Fitness of a stored candidate row and its evaluation row (with its score matrix row)."""
        program = getattr(evaluation, "program", None)
        return Fitness(
            spec=spec or GraphSpec.model_validate(row.spec),
            candidate_id=row.id,
            graph_hash=row.graph_hash,
            val_score=getattr(evaluation, "val_score", None),
            val_stderr=getattr(evaluation, "val_stderr", None) or 0.0,
            cost_tokens=_work_tokens(getattr(evaluation, "usage", None) or {}),
            program=Program.model_validate(program) if program else None,
            history=list(getattr(evaluation, "history", None) or []),
            from_store=from_store,
            status=getattr(evaluation, "status", "failed"),
            reason=getattr(evaluation, "error", None) or "",
            val_scores=self.store.example_scores("val", row.id).get(row.id, {}),
        )

    def _report(self, fitness: Fitness) -> Fitness:
        if self.on_result is not None:
            self.on_result(fitness)
        return fitness

    def check_seeds(self, seeds: Sequence[Fitness]) -> None:
        """Raises RunError when no seed graph could be evaluated at all (nothing to search from)."""
        if seeds and not any(f.val_score is not None for f in seeds):
            reasons = "; ".join(f"{f.spec.name}: {f.reason}" for f in seeds)[:400]
            raise RunError(f"no seed graph could be evaluated ({reasons})")
