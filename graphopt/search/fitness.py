"""The fitness of an optimizer graph: the validation score the inner loop reaches with it.

`Evaluator` is the driver's side of an evaluation: it registers each graph in the run store (with
its lineage), reuses a finished evaluation of the same canonical hash (in this run or after
`--resume`: the store is the source of truth), and hands the rest to an executor as units of
work that run concurrently, each with its own usage account. Only the evaluator writes the
store. `evaluate_many` registers a batch in order before running any of it, so candidate ids do
not depend on which evaluation finishes first.

Racing (successive halving, `race=True` with a budget `screen`, for loops of two or more steps):
the seeds and each generation's children are first scored on a screen (the first inner-loop
step, its program scored on `screen` validation examples drawn for the race, seeded by the run's
seed and the race's key). A graph leaves the race only when the paired sign test says it is worse
than the leader (`policy.Race`); when too few can be cut, the screen grows (the same screen
programs scored on more validation examples) until it separates them or is the whole validation
set. The graphs that go on continue from their screen to the full inner loop and validation set;
the ones cut are stored as "screened". Both rungs are in the evaluation's usage and the run's
ledger; the `race` event records each graph's per-example screen scores and the decision, so a
resumed race decides as the first one did.
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
from ..program.model import Program
from ..status import Status
from .admission import UnitEstimate, cap_text, estimate_unit, fits, headroom, waves
from .archive import Scored, graph_hash
from .budgets import SearchBudget
from .executor import Executor, LocalExecutor, default_parallel
from .journal import Journal
from .racing import Racing
from .unit import EvalUnit, UnitResult, merged_usage, work_tokens


@dataclass(frozen=True)
class Fitness:
    """One graph's evaluation.

    Attributes:
        status: "done", "partial" (cut by a budget cap), "failed" (see `reason`), "screened"
            (lost its race: scored on the screen's examples only) or, inside a race, "screen".
        val_score: the validation score (None when there is none: failed, or cut before it).
        cost_tokens: tokens of every model call the evaluation needed, answered from the response
            cache or not, so graphs scored later are not made to look cheaper by earlier ones.
        history: the inner loop's step records (each a dict), read by the meta prompt optimizer.
        val_scores: the score on each validation example (the store's score matrix row).
        from_store: True when a finished evaluation in the store was reused.
        changed: False when the program is the one the inner loop started from.
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
    status: Status = Status.done
    reason: str = ""
    val_scores: dict[str, float] = field(default_factory=dict)
    changed: bool = True

    @property
    def ok(self) -> bool:
        """True for a finished evaluation: the only kind the search builds on."""
        return self.status == Status.done and self.val_score is not None

    def scored(self, generation: int = 0) -> Scored:
        return Scored(
            self.spec, self.graph_hash, self.val_score or 0.0, self.cost_tokens, self.candidate_id, generation,
            per_example=self.val_scores or None, changed=self.changed,
        )


@dataclass(frozen=True)
class EvalRequest:
    """A graph to evaluate and where it came from (its store lineage)."""

    spec: GraphSpec
    parents: tuple[str, ...] = ()
    origin: str = "seed"
    mutation: str | None = None
    generation: int = 0
    charged: dict[str, Any] | None = None  # usage of the proposal that made it (meta calls)


def _scaled(estimate: UnitEstimate | None, scale: float) -> UnitEstimate | None:
    """An estimate with its tokens scaled (calls are left as they are)."""
    if estimate is None:
        return None
    return UnitEstimate(
        estimate.program_calls, estimate.optimizer_calls, int(estimate.program_tokens * scale), int(estimate.optimizer_tokens * scale)
    )


class Evaluator(Racing):
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
        self._inflight: dict[Any, asyncio.Future] = {}
        self._screens: dict[str, UnitResult] = {}  # screens that may continue, by candidate id
        self._charged: dict[str, dict[str, Any]] = {}  # proposal usage (meta calls), by candidate id
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

    def request_of(self, entry: dict[str, Any]) -> EvalRequest:
        """The request that registered a stored candidate (a journal entry replayed on resume),
        with the usage of the proposal that made it."""
        candidate_id = entry["candidate"]
        row = self.store.candidate(candidate_id)
        if row is None:
            raise RunError(f"the run's journal names candidate {candidate_id!r}, which the store lacks")
        return EvalRequest(
            GraphSpec.model_validate(row.spec), tuple(row.parents or ()), row.origin, row.mutation, row.generation,
            charged=entry.get("usage") or None,
        )

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

    async def evaluate_many(self, requests: Sequence[EvalRequest], *, race: bool = False, key: str = "") -> list[Fitness]:
        """Evaluates a batch concurrently; the results come back in the order of `requests`.

        Under a call or token cap the batch runs in waves that fit the budget left (see
        `admission`), so a cap cuts as few evaluations as possible. With `race` (and a budget
        with a `screen` and two or more inner steps), the batch is raced first under the race's
        `key` (it seeds the screen's examples): see `_race`. A graph that appears twice in a
        batch (the same canonical hash) is evaluated once; both places get its fitness.
        """
        rows = await asyncio.to_thread(self._register_all, requests)
        unique = list({row.id: row for row in rows}.values())
        if race and self._races(unique):
            results = await self._race(unique, key)
        else:
            results = await self._in_waves(unique, self._fitness, self._estimate)
        by_id = {row.id: fitness for row, fitness in zip(unique, results)}
        return [by_id[row.id] for row in rows]

    def _register_all(self, requests: Sequence[EvalRequest]) -> list[Any]:
        """Registers the requests in order (in a worker thread) and notes what each proposal cost."""
        rows = []
        for r in requests:
            row = self.register(r.spec, parents=r.parents, origin=r.origin, mutation=r.mutation, generation=r.generation)
            if r.charged:
                self._charged[row.id] = merged_usage(self._charged.get(row.id, {}), r.charged)
            rows.append(row)
        return rows

    async def _in_waves(self, rows: Sequence[Any], run: Callable, estimate: Callable, *, strict: bool = False) -> list[Fitness]:
        """Runs `run(row)` for every row in waves that fit the caps (see `admission`). `strict`:
        once a wave ran, work whose estimate does not fit what is left is not started (a
        screen that would eat the budget its race's winner needs) but recorded as cut by the
        budget; the estimates are scaled by what the batch's finished work really spent."""
        results: list[Fitness | None] = [None] * len(rows)
        todo = list(range(len(rows)))
        guessed = spent = 0.0  # estimated and measured tokens of this batch's finished work
        while todo:
            room = headroom(self.lm)
            done = await asyncio.to_thread(lambda: {i for i in todo if self.store.done_evaluation(rows[i].id)})
            estimates = [None if i in done else estimate(rows[i]) for i in todo]
            chosen = waves(estimates, room)
            # Estimates are upper bounds; the work already run in this batch says by how much.
            scale = spent / guessed if strict and guessed and spent else 1.0
            if strict and len(todo) < len(rows) and not fits([_scaled(estimates[j], scale) for j in chosen], room):
                for i in todo:
                    results[i] = await asyncio.to_thread(self._not_started, rows[i])
                break
            wave = [todo[j] for j in chosen]
            for j, i, fitness in zip(chosen, wave, await asyncio.gather(*(run(rows[i]) for i in wave))):
                results[i] = fitness
                if estimates[j] is not None and not fitness.from_store:
                    guessed, spent = guessed + estimates[j].tokens, spent + fitness.cost_tokens
            todo = [i for i in todo if i not in wave]
        return results  # type: ignore[return-value]

    def _not_started(self, row: Any) -> Fitness:
        """Records a graph the budget left no room for (partial, no score: a resume with more
        budget evaluates it) and reads it back (in a thread)."""
        reason = f"budget reached: {cap_text(self.lm)}: too little left to start it"
        self.exhausted = self.exhausted or reason
        self.store.fail_evaluation(row.id, reason, status=Status.partial)
        return self._report(self.fitness_of(row, self.store.evaluation(row.id), from_store=False))

    def _estimate(self, row: Any, *, screen: bool = False) -> UnitEstimate:
        messages = self.seed_program.messages(self.task.train[0].input) if self.task.train else []
        prompt = sum(len(m["content"]) for m in messages) // 4 + (self.task.max_tokens or 32)
        return estimate_unit(GraphSpec.model_validate(row.spec), self.budget, prompt, screen=screen, train=len(self.task.train))

    def _unit(self, row: Any, *, steps: int | None = None, final_ids: tuple[str, ...] | None = None, resume: dict | None = None) -> EvalUnit:
        return EvalUnit(
            row.id, GraphSpec.model_validate(row.spec), self.seed_program,
            self.budget.inner_steps if steps is None else steps, self.budget.minibatch,
            self.budget.val_limit, self.seed, final_ids=final_ids, resume=resume,
        )

    async def _fitness(self, row: Any) -> Fitness:
        done = await asyncio.to_thread(self.store.done_evaluation, row.id)
        if done is not None:
            self.reused += 1
            return self._report(await asyncio.to_thread(self.fitness_of, row, done, from_store=True))
        screen = self._screens.pop(row.id, None)  # a race's winner continues from its screen
        unit = self._unit(row, resume=screen.result if screen is not None else None)
        return await self._once(row.graph_hash, lambda: self._run(row, unit, earlier=screen))

    async def _once(self, key: Any, make: Callable) -> Fitness:
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

    async def _run(self, row: Any, unit: EvalUnit, *, screen: bool = False, earlier: UnitResult | None = None) -> Fitness:
        spec = unit.spec
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
        if earlier is not None:  # the evaluation's spend includes its screen's
            outcome.usage = merged_usage(earlier.usage, outcome.usage)
        if screen and outcome.status == Status.done and (outcome.result or {}).get("best_val") is not None:
            self._screens[row.id] = outcome
            result = outcome.result
            program = Program.model_validate(result["best_program"])
            return Fitness(
                spec, row.id, row.graph_hash, result["best_val"], result.get("best_val_stderr") or 0.0,
                work_tokens(outcome.usage), program,
                status=Status.screen, val_scores=result.get("val_scores") or {}, changed=program.id != self.seed_program.id,
            )
        fitness = await asyncio.to_thread(self._record, row, outcome, spec)
        if outcome.status == Status.done:
            self.scored_now += 1
        elif outcome.status == Status.partial:
            self.exhausted = self.exhausted or outcome.reason
        else:
            self.failed += 1
        self._report(fitness)
        self._check_error_rate(outcome)
        return fitness

    def _record(self, row: Any, outcome: UnitResult, spec: GraphSpec) -> Fitness:
        """Writes the unit's outcome and the spend so far, and reads the evaluation back (in a thread)."""
        self._write(row.id, outcome)
        if outcome.status == Status.failed:
            self.store.add_event("evaluation_failed", {"candidate": row.id, "reason": outcome.reason})
        self.store.record_ledger(self.lm.ledger)
        return self.fitness_of(row, self.store.evaluation(row.id), from_store=False, spec=spec)

    def _write(self, cid: str, outcome: UnitResult) -> None:
        """Stores a unit's outcome: a score only for done or partial work, a reason for failures.
        The usage stored includes the meta calls of the proposal that made the graph."""
        outcome.usage = merged_usage(outcome.usage, self._charged.pop(cid, {}))
        result = outcome.result
        if outcome.status == Status.done and (result is None or result.get("best_val") is None):
            outcome.status, outcome.reason = Status.failed, "the inner loop returned no validation score"
        if outcome.status == Status.failed or result is None:
            self.store.fail_evaluation(cid, outcome.reason or "no result", usage=outcome.usage,
                                       status=Status.partial if outcome.status == Status.partial else Status.failed)
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
            cost_tokens=work_tokens(getattr(evaluation, "usage", None) or {}),
            program=Program.model_validate(program) if program else None,
            history=list(getattr(evaluation, "history", None) or []),
            from_store=from_store,
            status=Status(getattr(evaluation, "status", Status.failed)),
            reason=getattr(evaluation, "error", None) or "",
            val_scores=self.store.example_scores("val", row.id).get(row.id, {}),
            changed=bool(program) and Program.model_validate(program).id != self.seed_program.id,
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
