"""`Evaluator`: evaluates many graphs at once, with the run store as its cache.

It registers each request's graph through the run (with its lineage), reuses a finished
evaluation of the same canonical hash (in this run or after `--resume`: the store is the source
of truth), runs the same graph once however often a batch names it, hands the rest to an
executor as units of work (each with its own usage account), runs a unit whose model calls
failed at the provider again, and stops the search when too many calls fail. `evaluate_many`
registers a batch in order before running any of it, so candidate ids do not depend on which
evaluation finishes first.

The rules beside it are small policies: admission under a cap (`admission.in_waves`), racing
(`racing.Racer`, whose decisions are `policy.Race`'s) and the winner (`winner`).
"""

from __future__ import annotations

__all__ = ["Evaluator"]

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ..errors import RunError
from ..graph.spec import GraphSpec
from ..lm import LM
from ..program.model import Program
from ..status import Status
from ..tasks.base import Task
from .admission import UnitEstimate, cap_text, estimate_unit, in_waves
from .budgets import SearchBudget
from .executor import Executor, LocalExecutor, default_parallel
from .fitness import EvalRequest, Fitness, fitness_of
from .journal import Journal
from .racing import Racer
from .run import Run
from .unit import EvalUnit, UnitResult, merged_usage


class Evaluator:
    """Scores graphs by running the inner loop as units on an executor, with the store as cache.

    Args:
        task: the task; the inner loop reads train and val only.
        lm: the client (used to build the default executor and to flush usage to the store).
        run: the run (its store already begun), through which every write goes.
        budget: loop sizes (inner steps, minibatch, val examples, the race's screen).
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
        self, task: Task, lm: LM, run: Run, budget: SearchBudget, seed_program: Program, *, seed: int = 0,
        on_result: Callable[[Fitness], None] | None = None, executor: Executor | None = None,
        max_error_rate: float = 0.02, provider_retries: int = 1,
    ):
        self.task, self.lm, self.run, self.budget = task, lm, run, budget
        self.seed_program, self.seed, self.on_result = seed_program, seed, on_result
        self.executor = executor or LocalExecutor(task, lm, default_parallel(lm))
        self.max_error_rate, self.provider_retries = max_error_rate, provider_retries
        self.scored_now = self.reused = self.failed = 0
        self.exhausted = ""  # the budget message once a cap cut an evaluation
        self._inflight: dict[Any, asyncio.Future] = {}
        self._charged: dict[str, dict[str, Any]] = {}  # proposal usage (meta calls), by candidate id
        self.journal = Journal(run)
        self.racer = Racer(self)

    async def evaluate(
        self, spec: GraphSpec, *, parents: Sequence[str] = (), origin: str = "seed", mutation: str | None = None, generation: int = 0
    ) -> Fitness:
        """The graph's fitness, from the store when it was scored before, else by running it.

        Raises:
            LLMError: a fatal provider error (the evaluation stays "running" until a resume).
            RunError: the run's share of failed provider calls passed `max_error_rate`.
        """
        (fitness,) = await self.evaluate_many([EvalRequest(spec, tuple(parents), origin, mutation, generation)])
        return fitness

    async def evaluate_many(self, requests: Sequence[EvalRequest], *, race: bool = False, key: str = "") -> list[Fitness]:
        """Evaluates a batch concurrently; the results come back in the order of `requests`.

        Under a call or token cap the batch runs in waves that fit the budget left (see
        `admission`), so a cap cuts as few evaluations as possible. With `race` (and a budget
        with a `screen` and two or more inner steps), the batch is raced first under the race's
        `key` (it seeds the screen's examples): see `racing`. A graph that appears twice in a
        batch (the same canonical hash) is evaluated once; both places get its fitness.
        """
        rows = await asyncio.to_thread(self._register_all, requests)
        unique = list({row.id: row for row in rows}.values())
        if race and self.racer.races(unique):
            results = await self.racer.race(unique, key)
        else:
            results = await self.in_waves(unique, self.fitness, self.estimate)
        by_id = {row.id: fitness for row, fitness in zip(unique, results)}
        return [by_id[row.id] for row in rows]

    def _register_all(self, requests: Sequence[EvalRequest]) -> list[Any]:
        """Registers the requests in order (in a worker thread) and notes what each proposal cost."""
        rows = []
        for r in requests:
            row = self.run.register(r.spec, parents=r.parents, origin=r.origin, mutation=r.mutation, generation=r.generation)
            if r.charged:
                self._charged[row.id] = merged_usage(self._charged.get(row.id, {}), r.charged)
            rows.append(row)
        return rows

    async def in_waves(self, rows: Sequence[Any], run: Callable, estimate: Callable, *, strict: bool = False) -> list[Fitness]:
        """`admission.in_waves` with this run's store and client; `strict`: work that no longer
        fits is recorded as not started."""
        cut = self._not_started if strict else None
        return await in_waves(rows, run, estimate, lm=self.lm, finished=self._finished, cut=cut)

    def _finished(self, row: Any) -> bool:
        return self.run.store.done_evaluation(row.id) is not None

    async def _not_started(self, row: Any) -> Fitness:
        reason = f"budget reached: {cap_text(self.lm)}: too little left to start it"
        self.exhausted = self.exhausted or reason
        await asyncio.to_thread(self.run.not_started, row.id, reason)
        return self.report(await asyncio.to_thread(self.fitness_of, row, from_store=False))

    def estimate(self, row: Any, *, screen: bool = False) -> UnitEstimate:
        messages = self.seed_program.messages(self.task.train[0].input) if self.task.train else []
        prompt = sum(len(m["content"]) for m in messages) // 4 + (self.task.max_tokens or 32)
        return estimate_unit(GraphSpec.model_validate(row.spec), self.budget, prompt, screen=screen, train=len(self.task.train))

    def unit(self, row: Any, *, steps: int | None = None, final_ids: tuple[str, ...] | None = None, resume: dict | None = None) -> EvalUnit:
        return EvalUnit(
            row.id, GraphSpec.model_validate(row.spec), self.seed_program,
            self.budget.loop if steps is None else self.budget.loop.model_copy(update={"steps": steps}),
            self.seed, final_ids=final_ids, resume=resume,
        )

    async def fitness(self, row: Any, earlier: UnitResult | None = None) -> Fitness:
        """A graph's full evaluation: the stored one when it is done, else run now (continuing
        from `earlier`, a race's screen, when given)."""
        done = await asyncio.to_thread(self.run.store.done_evaluation, row.id)
        if done is not None:
            self.reused += 1
            return self.report(await asyncio.to_thread(self.fitness_of, row, done, from_store=True))
        unit = self.unit(row, resume=earlier.result if earlier is not None else None)
        return await self.once(row.graph_hash, lambda: self._run(row, unit, earlier))

    async def once(self, key: Any, make: Callable[[], Awaitable[Fitness]]) -> Fitness:
        """Runs `make()` once per key at a time: the same graph twice in one batch runs once."""
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            fitness = await make()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: joiners re-raise it themselves
            raise
        else:
            future.set_result(fitness)
        finally:
            self._inflight.pop(key, None)
        return fitness

    async def _run(self, row: Any, unit: EvalUnit, earlier: UnitResult | None) -> Fitness:
        return await self.settle(row, await self.execute(row, unit, earlier), unit.spec)

    async def execute(self, row: Any, unit: EvalUnit, earlier: UnitResult | None = None) -> UnitResult:
        """Runs a unit (again while only its provider calls failed, `provider_retries` times);
        its usage includes `earlier`'s (the screen it continues)."""
        # Store writes run in a worker thread: a slow database (a remote PostgreSQL) does not
        # hold up the event loop that drives the other evaluations in flight.
        await asyncio.to_thread(self.run.start, row.id)
        outcome = await self.executor.run(unit)
        for _ in range(self.provider_retries):
            if not outcome.provider_failed:
                break
            # Calls that outlived the client's retries: run the unit again (its finished calls
            # come from the cache when there is one) before recording a failure.
            self.check_error_rate(outcome.reason)
            outcome = await self.executor.run(unit)
        if earlier is not None:
            outcome.usage = merged_usage(earlier.usage, outcome.usage)
        return outcome

    async def settle(self, row: Any, outcome: UnitResult, spec: GraphSpec | None = None) -> Fitness:
        """Records a unit's outcome (with what its proposal cost) and the spend so far, and
        returns the graph's fitness read back from the store."""
        fitness = await asyncio.to_thread(self._record, row, outcome, spec)
        if outcome.status == Status.done:
            self.scored_now += 1
        elif outcome.status == Status.partial:
            self.exhausted = self.exhausted or outcome.reason
        else:
            self.failed += 1
        self.report(fitness)
        self.check_error_rate(outcome.reason)
        return fitness

    def _record(self, row: Any, outcome: UnitResult, spec: GraphSpec | None) -> Fitness:
        outcome.usage = merged_usage(outcome.usage, self._charged.pop(row.id, {}))
        self.run.tell(row.id, outcome)
        self.run.record_ledger(self.lm.ledger)
        return self.fitness_of(row, from_store=False, spec=spec)

    def screened_out(self, row: Any, screen: UnitResult, note: str) -> Fitness:
        """Records a graph that lost its race and reads it back (in a thread)."""
        screen.usage = merged_usage(screen.usage, self._charged.pop(row.id, {}))
        self.run.screened_out(row.id, screen, note)
        self.run.record_ledger(self.lm.ledger)
        return self.report(self.fitness_of(row, from_store=False))

    def check_error_rate(self, last: str) -> None:
        """Raises RunError when the share of calls that failed for good passes `max_error_rate`
        (`last`: what failed last, for the message)."""
        usage = self.lm.ledger.total()
        failures, calls = usage.failures, usage.calls + usage.failures
        if not failures or failures <= self.max_error_rate * calls:
            return
        raise RunError(
            f"{failures} of {calls} model calls failed at the provider after retries"
            f" ({failures / calls:.1%}, above --max-error-rate {self.max_error_rate:g}); last: {last[:200]};"
            " fix the provider (or raise --max-error-rate) and continue with --resume"
        )

    def fitness_of(self, row: Any, evaluation: Any = None, *, from_store: bool, spec: GraphSpec | None = None) -> Fitness:
        """The Fitness of a stored candidate row and its evaluation (read from the store when not given)."""
        store = self.run.store
        evaluation = evaluation if evaluation is not None else store.evaluation(row.id)
        scores = store.example_scores("val", row.id).get(row.id, {})
        return fitness_of(row, evaluation, scores, seed_id=self.seed_program.id, from_store=from_store, spec=spec)

    def report(self, fitness: Fitness) -> Fitness:
        if self.on_result is not None:
            self.on_result(fitness)
        return fitness
