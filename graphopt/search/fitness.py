"""The fitness of an optimizer graph: the validation score the inner loop reaches with it.

`Evaluator` scores graphs for the meta optimizers. Every graph goes into the run store first
(with its lineage), and a graph whose canonical hash already has a finished evaluation is never
scored again: not in this run, and not after `--resume`, since the store is the source of truth.
"""

from __future__ import annotations

__all__ = ["Fitness", "Evaluator"]

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import BudgetExceeded
from ..graph.spec import GraphSpec
from ..lm import LM
from ..store import RunStore
from ..tasks.base import Task
from ..types import Program
from .archive import Scored, graph_hash
from .budgets import SearchBudget


@dataclass(frozen=True)
class Fitness:
    """One graph's evaluation.

    Attributes:
        cost_tokens: tokens of every model call the evaluation needed, answered from the response
            cache or not, so graphs scored later are not made to look cheaper by earlier ones.
        history: the inner loop's step records (each a dict), read by the meta prompt optimizer.
        from_store: True when a finished evaluation in the store was reused.
    """

    spec: GraphSpec
    candidate_id: str
    graph_hash: str
    val_score: float
    val_stderr: float
    cost_tokens: float
    program: Program | None
    history: list[dict[str, Any]] = field(default_factory=list)
    from_store: bool = False

    def scored(self, generation: int = 0) -> Scored:
        return Scored(self.spec, self.graph_hash, self.val_score, self.cost_tokens, self.candidate_id, generation)


def _work_tokens(usage: dict[str, Any]) -> float:
    levels = usage.get("levels", {})
    return float(sum(u.get("tokens", 0) + u.get("cached_tokens", 0) for u in levels.values()))


class Evaluator:
    """Scores graphs by running the inner loop, with the run store as the fitness cache.

    Args:
        task: the task; the inner loop reads train and val only.
        lm: the client whose ledger measures each evaluation (evaluations run one at a time).
        store: the run store (already `ensure_run`).
        budget: loop sizes (inner steps, minibatch, val examples).
        seed_program: the program every graph starts from.
        on_result: called with each Fitness (for progress displays).
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
    ):
        self.task = task
        self.lm = lm
        self.store = store
        self.budget = budget
        self.seed_program = seed_program
        self.seed = seed
        self.on_result = on_result
        self.scored_now = 0
        self.reused = 0

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
            BudgetExceeded: a cap was reached during the inner loop; the evaluation is marked
                failed (so a resumed run with more budget scores it again) and nothing else is lost.
        """
        from ..loop import optimize

        row = self.register(spec, parents=parents, origin=origin, mutation=mutation, generation=generation)
        done = self.store.done_evaluation(row.id)
        if done is not None:
            self.reused += 1
            stored_spec = GraphSpec.model_validate(row.spec)
            fitness = Fitness(
                spec=stored_spec,
                candidate_id=row.id,
                graph_hash=row.graph_hash,
                val_score=done.val_score,
                val_stderr=done.val_stderr or 0.0,
                cost_tokens=_work_tokens(done.usage or {}),
                program=Program.model_validate(done.program) if done.program else None,
                history=list(done.history or []),
                from_store=True,
            )
            self._report(fitness)
            return fitness

        self.store.start_evaluation(row.id)
        before = self.lm.ledger.snapshot()
        try:
            result = await optimize(
                self.seed_program,
                spec,
                self.task,
                self.lm,
                steps=self.budget.inner_steps,
                minibatch_size=self.budget.minibatch,
                val_limit=self.budget.val_limit,
                seed=self.seed,
            )
        except Exception as exc:  # BudgetExceeded included: marked failed, so a resume retries it
            self.store.fail_evaluation(row.id, exc)
            raise
        usage = self.lm.ledger.since(before)
        if getattr(result, "stopped", None) == "budget":
            self.store.fail_evaluation(row.id, "budget reached during the inner loop")
            raise BudgetExceeded("budget reached during an evaluation")
        record = result.to_dict()
        history = record.get("history", [])
        self.store.finish_evaluation(
            row.id,
            val_score=result.best_val,
            val_stderr=getattr(result, "best_val_stderr", None),
            program=result.best_program,
            history=history,
            usage=usage,
        )
        self.store.record_ledger(self.lm.ledger)
        self.scored_now += 1
        fitness = Fitness(
            spec=spec,
            candidate_id=row.id,
            graph_hash=row.graph_hash,
            val_score=result.best_val,
            val_stderr=getattr(result, "best_val_stderr", 0.0) or 0.0,
            cost_tokens=_work_tokens(usage.to_dict()),
            program=result.best_program,
            history=history,
        )
        self._report(fitness)
        return fitness

    def _report(self, fitness: Fitness) -> None:
        if self.on_result is not None:
            self.on_result(fitness)
