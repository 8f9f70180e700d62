"""`run_search`: the default search behind `graphopt search`, as phases over one engine.

1. score the seed graphs (together);
2. prompt-optimize each seed graph (meta prompt optimizer; the seeds together);
3. run the structure search seeded with everything so far;
4. choose the winner on validation from the store, then, for the report only, read the test split;
5. export the winner as `best.graph.json` (with its provenance) and `best.program.json`.

Everything is written to the run store as it arrives, so a killed run continues with `--resume`
without scoring any finished graph again: the store, not the response cache, rebuilds the search.
The caller draws pictures and writes the HTML report (the CLI does both).
"""

from __future__ import annotations

__all__ = ["run_search", "SearchReport", "ReportRow", "run_config"]

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InternalError
from ..graph.io import save_graph
from ..graph.spec import GraphSpec, Provenance
from ..lm import LEVELS, LM
from ..store import RunStore
from ..store.shared import RunDir
from ..tasks.base import Task
from .archive import graph_hash
from .budgets import SearchBudget
from .engine import SearchEngine, carried_usage, run_identity
from .executor import Executor
from . import winner
from .evaluator import Evaluator
from .fitness import Fitness
from .phases import Phase, ReportRow, default_phases
from .run import Run

USAGE_FLUSH_SECONDS = 2.0


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
    failed: int = 0


def run_config(task: Task, lm: LM, budget: SearchBudget, seed: int, seed_graphs: Sequence[GraphSpec]) -> dict[str, Any]:
    """What the store keeps about the run (never a key: the store strips secret-like names too)."""
    return {
        "task": task.name,
        "task_source": task.source,
        "models": {level: lm.model(level) for level in LEVELS},
        "budget": budget.model_dump(mode="json"),
        "seed": seed,
        "seed_graphs": [g.name for g in seed_graphs],
        "identity": run_identity(task, lm, budget, seed, seed_graphs),
    }


async def run_search(
    task: Task,
    lm: LM,
    budget: SearchBudget,
    run_dir: RunDir | str | Path,
    seed_graphs: Sequence[GraphSpec],
    *,
    seed: int = 0,
    on_event: Callable[[str, dict[str, Any]], None] | None = None,
    executor: Executor | None = None,
    max_error_rate: float = 0.02,
    phases: Sequence[Phase] | None = None,
) -> SearchReport:
    """Runs the search and writes `run.sqlite`, `best.graph.json` and `best.program.json` in the run directory.

    Args:
        run_dir: a directory for a new run, or a `RunDir` (to resume the run it holds, or to keep
            the store in a database such as PostgreSQL: see `graphopt.store.shared`).
        executor: runs the graph evaluations (default: in this process, see `default_parallel`).
        max_error_rate: share of model calls that may fail at the provider (after retries) before it stops.
        phases: the pipeline (default: `default_phases(seed_graphs)`); the last must set the winner.

    Raises:
        ConfigError: the directory holds another run (pass `RunDir(path, resume=True)` to continue it), or a resumed
            run was made with other settings.
        RunError: no seed graph could be evaluated, or too many provider errors.
        LLMError: a fatal provider error (bad key, unknown model): the run stays resumable.
    """
    if not seed_graphs:
        raise ConfigError("a search needs at least one seed graph")
    # The same graph given twice (by name and as a file, or twice) is one seed.
    distinct: dict[str, GraphSpec] = {}
    for graph in seed_graphs:
        distinct.setdefault(graph_hash(graph), graph)
    seed_graphs = list(distinct.values())
    where = RunDir.of(run_dir)
    where.check()
    out_dir = where.path
    run = Run(where.open())
    emit = on_event or (lambda kind, data: None)
    flusher: asyncio.Task | None = None
    try:
        run.begin(run_config(task, lm, budget, seed, seed_graphs))
        lm.carried = carried_usage(run.store) if run.store.resumed else lm.carried
        flusher = asyncio.create_task(_flush_usage(run, lm))
        engine = _engine(task, lm, budget, run, seed, emit, executor, max_error_rate)
        for phase in phases if phases is not None else default_phases(seed_graphs):
            await phase.run(engine)
        report = _finish(engine, out_dir)
        run.set_status("finished")
        return report
    except InternalError as exc:
        log = _log_bug(out_dir, run, exc)
        with contextlib.suppress(Exception):
            run.set_status("interrupted")
        raise InternalError(f"{exc} (traceback in {log}; please report it); the run continues with --resume", exc.details) from None
    except BaseException:
        with contextlib.suppress(Exception):  # the store may be what failed; never hide the cause
            run.set_status("interrupted")
        raise
    finally:
        if flusher is not None:
            flusher.cancel()
            with contextlib.suppress(BaseException):
                await flusher  # a write in flight ends before the store closes
        with contextlib.suppress(Exception):
            run.record_ledger(lm.ledger)
        run.close()


def _log_bug(out_dir: Path, run: Run, exc: InternalError) -> Path:
    """Writes a bug's traceback to the run's log (and an event to the store); returns the log's path."""
    log = Path(out_dir) / "run.log"
    with contextlib.suppress(OSError):
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as handle:
            handle.write(f"{exc}\n{exc.details}\n")
    with contextlib.suppress(Exception):
        run.note("bug", {"message": str(exc)[:500], "traceback": exc.details[-4000:]})
    return log


def _engine(task, lm, budget, run, seed, emit, executor, max_error_rate) -> SearchEngine:
    best_so_far: list[float] = []
    engine: SearchEngine

    def on_result(fitness: Fitness) -> None:
        if fitness.val_score is not None and fitness.ok:
            best_so_far.append(fitness.val_score)
        emit(
            "candidate",
            {
                "id": fitness.candidate_id,
                "name": fitness.spec.name,
                "val": fitness.val_score,
                "status": fitness.status,
                "reason": fitness.reason,
                "tokens": fitness.cost_tokens,
                "reused": fitness.from_store,
                "best": max(best_so_far, default=0.0),
                "usage": engine.usage(),
            },
        )

    evaluator = Evaluator(
        task, lm, run, budget, task.seed_program, seed=seed, on_result=on_result,
        executor=executor, max_error_rate=max_error_rate,
    )
    engine = SearchEngine(evaluator, emit=emit)
    return engine


async def _flush_usage(run: Run, lm: LM) -> None:
    """Writes the session's usage to the store every few seconds, so a kill loses little of it."""
    while True:
        await asyncio.sleep(USAGE_FLUSH_SECONDS)
        await asyncio.to_thread(run.record_ledger, lm.ledger)  # off the loop that runs the evaluations


def _finish(engine: SearchEngine, out_dir: Path) -> SearchReport:
    best = engine.best or winner.best_partial(engine.evaluator)
    stop_reason = engine.stopped or engine.search_stop
    engine.run.note("stop", {"reason": stop_reason, "best": best.candidate_id})
    best_path = _export(out_dir, best, engine.task, engine.lm, engine.run.store, engine.rows)
    engine.run.set_summary(
        {"best": best.candidate_id, "best_name": best.spec.name, "stop_reason": stop_reason, "rows": [r.__dict__ for r in engine.rows]}
    )
    return SearchReport(
        best=best,
        rows=engine.rows,
        best_path=best_path,
        stop_reason=stop_reason,
        candidates=len(engine.run.store.candidates()),
        rejected=engine.rejected,
        reused=engine.evaluator.reused,
        failed=engine.evaluator.failed,
    )


def _export(out_dir: Path, best: Fitness, task: Task, lm: LM, store: RunStore, rows: list[ReportRow]) -> Path:
    row = next((r for r in rows if r.role == "best"), None)
    candidate = store.candidate(best.candidate_id)
    evaluation = store.evaluation(best.candidate_id)
    scores = {"val": best.val_score}
    if row is not None and row.test_score is not None:
        scores["test"] = row.test_score
    provenance = Provenance(
        parents=list(getattr(candidate, "parents", []) or []),
        mutation=getattr(candidate, "mutation", None),
        task=task.name,
        models={level: lm.model(level) for level in LEVELS},
        scores=scores,
        cost={"tokens": row.tokens if row is not None else {}, "dollars": getattr(evaluation, "dollars", 0.0) or 0.0},
    )
    spec: GraphSpec = best.spec.model_copy(update={"provenance": provenance})
    path = save_graph(spec, out_dir / "best.graph.json")
    if best.program is not None:
        (out_dir / "best.program.json").write_text(best.program.model_dump_json(indent=2) + "\n")
    return path
