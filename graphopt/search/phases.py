"""The phases of a search, each a small object over the shared `SearchEngine`.

The default pipeline is `default_phases()`: score the seed graphs together, prompt-optimize them
together, evolve structures, score the winner and the seeds on test. A phase checks
`engine.stopped` before starting work, so a budget cap ends the search cleanly after the phase
in flight; anything a phase finished is in the store already.
"""

from __future__ import annotations

__all__ = ["Phase", "SeedPhase", "PromptPhase", "StructurePhase", "ChoosePhase", "TestPhase", "ReportRow", "default_phases"]

import asyncio
import math
import random
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..errors import BudgetExceeded, RunError
from ..graph.spec import GraphSpec
from ..program.run import evaluate
from ..status import Status
from .crossover import SubgraphCrossover
from .engine import SearchEngine
from . import winner
from ..store.events import InferenceCost
from .evolution import ProposalMix, StructureSearch
from .fitness import EvalRequest, Fitness
from .llm_mutation import LLMProposal
from .mutations import default_mutations
from .paired import paired_difference
from .prompt_opt import MetaPromptOptimizer, llm_nodes
from .run import Run
from .frontier import get_selection
from .stop import BudgetStop, MaxGenerations, NoImprovement, StopCondition, WallTime


class Phase(ABC):
    """One stage of a search."""

    name = "phase"

    @abstractmethod
    async def run(self, engine: SearchEngine) -> None:
        """Does the phase's work, reading and writing `engine` (and through it the store)."""


class SeedPhase(Phase):
    """Scores every seed graph, all of them together, racing them first when the budget has a
    screen: the budget goes to the seeds that show signal on a few examples, before any seed
    gets a full inner loop or meta prompt optimization."""

    name = "seed graphs"

    def __init__(self, graphs: Sequence[GraphSpec]):
        self.graphs = list(graphs)

    async def run(self, engine: SearchEngine) -> None:
        engine.emit("phase", {"name": self.name, "count": len(self.graphs)})
        engine.seeds = await engine.evaluator.evaluate_many([EvalRequest(g) for g in self.graphs], race=True, key="seeds")
        _check_seeds(engine.seeds)
        engine.add(engine.seeds)


def _check_seeds(seeds: Sequence[Fitness]) -> None:
    """Raises RunError when no seed graph could be evaluated at all (nothing to search from)."""
    if seeds and not any(f.val_score is not None for f in seeds):
        reasons = "; ".join(f"{f.spec.name}: {f.reason}" for f in seeds)[:400]
        raise RunError(f"no seed graph could be evaluated ({reasons})")


class PromptPhase(Phase):
    """The meta prompt optimizer on every evaluated seed graph, the seeds together."""

    name = "meta prompt optimization"

    async def run(self, engine: SearchEngine) -> None:
        budget = engine.budget
        if not budget.prompt_iterations or engine.stopped:
            return
        seeds = leading_graphs(engine.seeds, budget.promote)
        if not seeds:
            return
        engine.emit("phase", {"name": self.name, "count": len(seeds)})
        optimizer = MetaPromptOptimizer(engine.lm, iterations=budget.prompt_iterations, candidates=budget.prompt_candidates)
        results = await optimizer.optimize_many(seeds, engine.evaluator, engine.task)
        for fitness, tuned in zip(seeds, results):
            engine.add(tuned.tried)
            summary = {
                "graph": fitness.spec.name,
                "proposed": len(tuned.edits),
                "kept": sum(e.accepted for e in tuned.edits),
                "reasons": sorted({e.reason for e in tuned.edits if not e.accepted and e.reason}),
            }
            await asyncio.to_thread(engine.run.note, "prompt_edits", summary)
            engine.emit("prompt_edits", summary)


def leading_graphs(seeds: Sequence[Fitness], promote: float) -> list[Fitness]:
    """The seed graphs the meta prompt optimizer tries first: the best `promote` share (at least
    one) of the finished seeds with a model-calling node, best first. Whether their inner loop
    changed the program does not matter: with a capable optimizer model, a better node prompt is
    often what makes its edits pass at all; what the edits gain decides whether more follow."""
    usable = sorted((f for f in seeds if f.ok and llm_nodes(f.spec)), key=lambda f: f.scored().rank_key())
    return usable[: max(1, math.ceil(promote * len(usable)))] if usable else []


def _stop(budget) -> StopCondition:
    stop: StopCondition = MaxGenerations(budget.generations) | NoImprovement(budget.patience)
    if budget.wall_time:
        stop = stop | WallTime(budget.wall_time)
    if budget.tokens or budget.dollars:
        stop = stop | BudgetStop(tokens=budget.tokens, dollars=budget.dollars)
    return stop


class StructurePhase(Phase):
    """Evolution of graph structures from everything evaluated so far."""

    name = "structure search"

    def __init__(self, search: StructureSearch | None = None):
        self.search = search

    def _search(self, engine: SearchEngine) -> StructureSearch:
        if self.search is not None:
            return self.search
        budget = engine.budget
        return StructureSearch(
            mutations=default_mutations(),
            selection=get_selection(budget.selection),
            stop=_stop(budget),
            crossover=SubgraphCrossover(),
            proposer=LLMProposal(engine.lm, context=engine.task_context),
            population=budget.population,
            children=budget.children,
            mix=ProposalMix(llm=budget.llm_share, crossover=budget.crossover_share, meta_share=budget.meta_share),
        )

    async def run(self, engine: SearchEngine) -> None:
        if engine.stopped or not engine.budget.generations:
            return
        engine.emit("phase", {"name": self.name, "count": engine.budget.generations})
        outcome = await self._search(engine).run(
            list(engine.pool.values()),
            engine.evaluator,
            random.Random(engine.seed),
            usage=engine.usage,
            on_generation=lambda state, population: engine.emit(
                "generation", {"generation": state.generation, "best": state.best_scores[-1], "usage": state.usage}
            ),
        )
        engine.add(list(outcome.results.values()))
        engine.rejected += outcome.rejected
        engine.search_stop = outcome.stop_reason


@dataclass
class ReportRow:
    """One row of the result table; `vs_best_seed` is the paired validation difference of the
    winner from the best seed (mean ± se over the shared examples, "within noise" when so); `why`
    says why the winner won; `tokens` has each level's tokens and, apart, the "cached" tokens of
    the calls it used that the response cache (or another evaluation's call) answered."""

    role: str
    candidate_id: str
    name: str
    val_score: float | None
    test_score: float | None
    tokens: dict[str, int]
    vs_best_seed: str = ""
    why: str = ""
    per_example: dict[str, float] = field(default_factory=dict)


class ChoosePhase(Phase):
    """Chooses the winner by the winner rule (`winner.choose`: the best seed unless a derived graph
    beats it by the paired test) and reads no test data: the last phase of a search whose programs
    are scored on test elsewhere (a benchmark that scores every method alike)."""

    name = "winner"

    async def run(self, engine: SearchEngine) -> None:
        engine.best, engine.why = await winner.choose(engine.evaluator)


class TestPhase(Phase):
    """Scores the winner and the seed graphs' programs on test, all together (for the report only)."""

    name = "test report"

    async def run(self, engine: SearchEngine) -> None:
        best, engine.why = await winner.choose(engine.evaluator)
        entries = [("seed", f) for f in engine.seeds if f.val_score is not None and f.status != Status.screened] + [("best", best)]
        engine.emit("phase", {"name": self.name, "count": len(entries)})
        unique = {f.candidate_id: f for _, f in entries}  # a seed that won is tested once
        scores = dict(zip(unique, await asyncio.gather(*(self._test(engine, f) for f in unique.values()))))
        tests = [scores[f.candidate_id] for _, f in entries]
        # Seeds that lost the race: their screen score (on fewer examples), and no test run.
        screened = [("screened seed", f) for f in engine.seeds if f.status == Status.screened]
        entries[-1:-1], tests[-1:-1] = screened, [None] * len(screened)
        engine.best = best
        spend = await asyncio.to_thread(lambda: [_tokens(engine, f.candidate_id) for _, f in entries])
        costs = await asyncio.to_thread(inference_costs, engine.run)
        engine.rows = [
            ReportRow(role, f.candidate_id, f.spec.name, f.val_score, test, tokens,
                      per_example=costs.get(f.candidate_id, {}))
            for (role, f), test, tokens in zip(entries, tests, spend)
        ]
        seeds = [f for f in engine.seeds if f.ok]
        if seeds:
            top = min(seeds, key=lambda f: f.scored().rank_key())
            matrix = await asyncio.to_thread(engine.run.store.example_scores, "val")
            diff = paired_difference(matrix.get(best.candidate_id, {}), matrix.get(top.candidate_id, {}))
            engine.rows[-1].vs_best_seed = f"{diff.text()} vs {top.spec.name}" if diff.n else ""
        engine.rows[-1].why = engine.why

    @staticmethod
    async def _test(engine: SearchEngine, fitness: Fitness) -> float | None:
        evaluation = await asyncio.to_thread(engine.run.store.evaluation, fitness.candidate_id)
        if evaluation is not None and evaluation.test_score is not None:
            return evaluation.test_score
        program = fitness.program or engine.task.seed_program
        examples = engine.task.test[: engine.budget.test_limit]
        try:
            result = await evaluate(program, examples, engine.task, engine.lm)
        except BudgetExceeded:
            return None
        if getattr(result, "errors", 0):
            return None  # a test score with provider failures in it is not one
        # What the program costs to use, per answered example, beside its accuracy.
        if result.per_example:
            cost = InferenceCost(fitness.candidate_id, result.per_example["calls"], result.per_example["tokens"])
            await asyncio.to_thread(engine.run.add, cost)
        await asyncio.to_thread(engine.run.set_test_score, fitness.candidate_id, result.accuracy, result.stderr)
        return result.accuracy


def inference_costs(run: Run) -> dict[str, dict[str, float]]:
    """Candidate id -> {"calls", "tokens"} per test example of its program (the `InferenceCost` events)."""
    return {cost.candidate: cost.per_example() for cost in run.events(InferenceCost)}


def _tokens(engine: SearchEngine, candidate_id: str) -> dict[str, int]:
    evaluation = engine.run.store.evaluation(candidate_id)
    if evaluation is None:
        return {}
    levels = (evaluation.usage or {}).get("levels", {})
    return {
        "program": evaluation.program_tokens or 0,
        "optimizer": evaluation.optimizer_tokens or 0,
        "meta": evaluation.meta_tokens or 0,
        "cached": int(sum(u.get("cached_tokens", 0) for u in levels.values())),
    }


def default_phases(seed_graphs: Sequence[GraphSpec]) -> list[Phase]:
    """Seeds, meta prompts, structures, test: the pipeline of `graphopt search`."""
    return [SeedPhase(seed_graphs), PromptPhase(), StructurePhase(), TestPhase()]
