"""The default search pipeline behind `graphopt search`.

1. score each seed graph (the inner loop's validation result);
2. prompt-optimize each seed graph (meta prompt optimizer);
3. run the structure search seeded with all of them;
4. choose the winner on validation, then, for the report only, read the test split;
5. export the winner as `best.graph.json` with its provenance.

Everything is written to the run store as it arrives, so a killed run continues with `--resume`
without scoring any finished graph again.
"""

from __future__ import annotations

__all__ = ["run_search", "SearchReport", "ReportRow"]

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import BudgetExceeded, ConfigError
from ..graph.io import save_graph
from ..graph.spec import GraphSpec, Provenance
from ..lm import LEVELS, LM
from ..program import evaluate
from ..store import RunStore
from ..tasks.base import Task
from ..types import Program
from .budgets import SearchBudget
from .crossover import SubgraphCrossover
from .evolution import StructureSearch
from .fitness import Evaluator, Fitness
from .llm_mutation import LLMProposal
from .mutations import default_mutations
from .prompt_opt import MetaPromptOptimizer
from .selection import Tournament
from .stop import BudgetStop, MaxGenerations, NoImprovement, SearchState, StopCondition, WallTime


@dataclass
class ReportRow:
    role: str
    candidate_id: str
    name: str
    val_score: float
    test_score: float | None
    tokens: dict[str, int]


@dataclass
class SearchReport:
    """The end of a search: the winner, the rows of the final table, and where files went."""

    best: Fitness
    rows: list[ReportRow] = field(default_factory=list)
    best_path: Path | None = None
    stop_reason: str = ""
    candidates: int = 0
    rejected: int = 0
    reused: int = 0


def _stop(budget: SearchBudget) -> StopCondition:
    stop: StopCondition = MaxGenerations(budget.generations) | NoImprovement(budget.patience)
    if budget.wall_time:
        stop = stop | WallTime(budget.wall_time)
    if budget.tokens or budget.dollars:
        stop = stop | BudgetStop(tokens=budget.tokens, dollars=budget.dollars)
    return stop


def run_config(task: Task, lm: LM, budget: SearchBudget, seed: int, seed_graphs: Sequence[GraphSpec]) -> dict[str, Any]:
    """What the store keeps about the run (never a key: the store strips secret-like names too)."""
    return {
        "task": task.name,
        "task_source": task.source,
        "models": {level: lm.model(level) for level in LEVELS},
        "budget": budget.model_dump(mode="json"),
        "seed": seed,
        "seed_graphs": [g.name for g in seed_graphs],
    }


async def run_search(
    task: Task,
    lm: LM,
    budget: SearchBudget,
    out_dir: Path,
    seed_graphs: Sequence[GraphSpec],
    *,
    resume: bool = False,
    seed: int = 0,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
) -> SearchReport:
    """Runs the whole pipeline and writes `out_dir/run.sqlite`, `best.graph.json` and `report.html`.

    Raises:
        ConfigError: `out_dir` holds another run (pass resume=True to continue it).
    """
    if not seed_graphs:
        raise ConfigError("a search needs at least one seed graph")
    store_file = out_dir / "run.sqlite"
    if store_file.exists() and not resume:
        raise ConfigError(f"{out_dir} already holds a run: add --resume to continue it, or choose another --out")
    store = RunStore.open(out_dir)
    emit = on_event or (lambda kind, data: None)
    try:
        store.ensure_run(run_config(task, lm, budget, seed, seed_graphs))
        report = await _pipeline(task, lm, budget, out_dir, seed_graphs, store, seed, emit)
        store.set_status("finished")
        return report
    except BaseException:
        store.set_status("interrupted")
        raise
    finally:
        store.record_ledger(lm.ledger)
        store.close()
        try:  # out_dir/report.html, after the status and spend are stored; it never fails the search
            from ..viz.report import write_report

            write_report(out_dir)
        except Exception:  # noqa: BLE001
            pass


async def _pipeline(
    task: Task,
    lm: LM,
    budget: SearchBudget,
    out_dir: Path,
    seed_graphs: Sequence[GraphSpec],
    store: RunStore,
    seed: int,
    emit: Callable[[str, dict[str, Any]], None],
) -> SearchReport:
    rng = random.Random(seed)
    best_so_far: list[float] = []

    def on_result(fitness: Fitness) -> None:
        best_so_far.append(fitness.val_score)
        emit(
            "candidate",
            {
                "id": fitness.candidate_id,
                "name": fitness.spec.name,
                "val": fitness.val_score,
                "tokens": fitness.cost_tokens,
                "reused": fitness.from_store,
                "best": max(best_so_far),
                "usage": SearchState.usage_from(lm.ledger),
            },
        )

    evaluator = Evaluator(task, lm, store, budget, task.seed_program, seed=seed, on_result=on_result)
    stop_reason = ""
    seeds: list[Fitness] = []
    pool: dict[str, Fitness] = {}
    try:
        emit("phase", {"name": "seed graphs", "count": len(seed_graphs)})
        for spec in seed_graphs:
            fitness = await evaluator.evaluate(spec, origin="seed")
            seeds.append(fitness)
            pool[fitness.graph_hash] = fitness
        if budget.prompt_iterations:
            emit("phase", {"name": "meta prompt optimization", "count": len(seeds)})
            optimizer = MetaPromptOptimizer(lm, iterations=budget.prompt_iterations, candidates=budget.prompt_candidates)
            for fitness in seeds:
                tuned = await optimizer.optimize(fitness, evaluator, task, rng)
                for tried in tuned.tried:
                    pool[tried.graph_hash] = tried
                summary = {
                    "graph": fitness.spec.name,
                    "proposed": len(tuned.edits),
                    "kept": sum(e.accepted for e in tuned.edits),
                    "reasons": sorted({e.reason for e in tuned.edits if not e.accepted and e.reason}),
                }
                store.add_event("prompt_edits", summary)
                emit("prompt_edits", summary)
        emit("phase", {"name": "structure search", "count": budget.generations})
        search = StructureSearch(
            mutations=default_mutations(),
            selection=Tournament(size=3),
            stop=_stop(budget),
            crossover=SubgraphCrossover(),
            proposer=LLMProposal(lm),
            population=budget.population,
            children=budget.children,
            llm_share=budget.llm_share,
            crossover_share=budget.crossover_share,
        )
        outcome = await search.run(
            list(pool.values()),
            evaluator,
            rng,
            usage=lambda: SearchState.usage_from(lm.ledger),
            on_generation=lambda state, population: emit(
                "generation", {"generation": state.generation, "best": state.best_scores[-1], "usage": state.usage}
            ),
        )
        pool.update(outcome.results)
        stop_reason = outcome.stop_reason
        rejected = outcome.rejected
    except BudgetExceeded as exc:
        stop_reason, rejected = str(exc), 0
        if not seeds:
            raise
    best = max(pool.values(), key=lambda f: (f.val_score, -f.cost_tokens))
    store.add_event("stop", {"reason": stop_reason, "best": best.candidate_id})
    emit("phase", {"name": "test report", "count": len(seeds) + 1})
    rows = await _report_rows(task, lm, budget, store, seeds, best)
    best_path = _export(out_dir, best, task, lm, store, rows)
    store.set_summary({"best": best.candidate_id, "best_name": best.spec.name, "stop_reason": stop_reason, "rows": [r.__dict__ for r in rows]})
    return SearchReport(
        best=best,
        rows=rows,
        best_path=best_path,
        stop_reason=stop_reason,
        candidates=len(store.candidates()),
        rejected=rejected,
        reused=evaluator.reused,
    )


async def _test_score(task: Task, lm: LM, budget: SearchBudget, store: RunStore, fitness: Fitness) -> float | None:
    evaluation = store.evaluation(fitness.candidate_id)
    if evaluation is not None and evaluation.test_score is not None:
        return evaluation.test_score
    program: Program = fitness.program or task.seed_program
    try:
        result = await evaluate(program, task.test[: budget.test_limit], task, lm)
    except BudgetExceeded:
        return None
    store.set_test_score(fitness.candidate_id, result.accuracy, result.stderr)
    return result.accuracy


def _tokens(store: RunStore, candidate_id: str) -> dict[str, int]:
    evaluation = store.evaluation(candidate_id)
    if evaluation is None:
        return {}
    return {
        "program": evaluation.program_tokens or 0,
        "optimizer": evaluation.optimizer_tokens or 0,
        "meta": evaluation.meta_tokens or 0,
    }


async def _report_rows(
    task: Task, lm: LM, budget: SearchBudget, store: RunStore, seeds: list[Fitness], best: Fitness
) -> list[ReportRow]:
    rows = []
    entries = [("seed", f) for f in seeds]
    entries.append(("best", best))
    for role, fitness in entries:
        test = await _test_score(task, lm, budget, store, fitness)
        rows.append(ReportRow(role, fitness.candidate_id, fitness.spec.name, fitness.val_score, test, _tokens(store, fitness.candidate_id)))
    return rows


def _export(out_dir: Path, best: Fitness, task: Task, lm: LM, store: RunStore, rows: list[ReportRow]) -> Path:
    row = next(r for r in rows if r.role == "best")
    candidate = store.candidate(best.candidate_id)
    evaluation = store.evaluation(best.candidate_id)
    scores = {"val": best.val_score}
    if row.test_score is not None:
        scores["test"] = row.test_score
    provenance = Provenance(
        parents=list(getattr(candidate, "parents", []) or []),
        mutation=getattr(candidate, "mutation", None),
        task=task.name,
        models={level: lm.model(level) for level in LEVELS},
        scores=scores,
        cost={"tokens": row.tokens, "dollars": getattr(evaluation, "dollars", 0.0) or 0.0},
    )
    spec: GraphSpec = best.spec.model_copy(update={"provenance": provenance})
    path = save_graph(spec, out_dir / "best.graph.json")
    if best.program is not None:
        (out_dir / "best.program.json").write_text(best.program.model_dump_json(indent=2) + "\n")
    try:
        from ..viz.dot import render

        render(spec, out_dir / "best.graph.svg")
    except Exception:  # drawing is a convenience; the graph file is what matters
        pass
    return path
