"""Running one study cell: build its task, run its method, score the result on the test split.

`run_cell` is what a worker runs, in this process or on a Ray worker: it needs the cell, the
study, the model settings (`LMConfig`, never a key) and a transport, and returns plain data:
the test score, the score of every test example (for paired comparisons), the validation score,
the cell's own usage per level, the program and, for a search, the winning graph.
"""

from __future__ import annotations

__all__ = ["run_cell", "cell_dir"]

import re
import time
from pathlib import Path
from typing import Any

from ..graph.io import load_graph
from ..graph.spec import GraphSpec
from ..lm import LM, LMConfig, usage_scope
from ..program.run import evaluate
from ..tasks import get_task
from ..program.model import Demo, Program
from .spec import Cell, StudySpec


def cell_dir(root: Path, cell: Cell) -> Path:
    """Where a search cell keeps its run directory (so a killed cell's search resumes)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", cell.key).strip("_")
    return root / "cells" / slug


def _few_shot(task, k: int) -> Program:
    demos = tuple(Demo(input=ex.input, output=ex.target) for ex in task.train[:k])
    return task.seed_program.with_demos(demos)


async def run_cell(
    cell: Cell,
    study: StudySpec,
    config: LMConfig,
    transport: Any,
    work_dir: Path,
    *,
    source_graph: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Runs one cell and returns its result (JSON data).

    Args:
        cell: the cell.
        study: the study it belongs to (task options, method settings, loop sizes).
        config: the model settings; the cell's program model replaces the program level's.
        transport: where the cell's requests go (shared by the cells of a process).
        work_dir: the study's directory (search cells keep their run directory below it).
        source_graph: for a transfer cell, the graph its source search found.

    Raises:
        GraphoptError: the task, graph or search cannot run (the runner records the cell failed).
    """
    from ..loop import optimize

    started = time.monotonic()
    entry = study.task(cell.task)
    task = get_task(entry.name, seed=cell.seed, **entry.options())
    cfg = config.with_models(program=cell.model) if cell.model else config
    loop = study.loop
    graph: GraphSpec | None = None
    val: float | None = None
    with usage_scope() as spent:
        if cell.source is not None:
            graph = GraphSpec.model_validate(source_graph)
            lm = LM(cfg, transport=transport)
            result = await optimize(task.seed_program, graph, task, lm, loop, seed=cell.seed)
            program, val = result.best_program, result.best_val
        else:
            method = study.method(cell.method)
            if method.kind == "search":
                program, graph, val, lm = await _search(cell, task, cfg, transport, work_dir, method.budget, method.settings)
            else:
                lm = LM(cfg, transport=transport)
                if method.kind == "zero-shot":
                    program = task.seed_program
                elif method.kind == "few-shot":
                    program = _few_shot(task, method.demos)
                else:
                    graph = load_graph(method.graph or "")
                    result = await optimize(task.seed_program, graph, task, lm, loop, seed=cell.seed)
                    program, val = result.best_program, result.best_val
        test = await evaluate(program, task.test[: loop.test_limit], task, lm)
        lm.cache.close()
    scores = {t.example.id: t.score for t in test.traces}
    return {
        "test": sum(scores.values()) / len(scores) if scores else 0.0,
        "scores": scores,
        "errors": sum(1 for t in test.traces if t.error),
        "val": val,
        "usage": spent.to_dict(),
        "program": program.model_dump(mode="json"),
        "graph": graph.model_dump(mode="json") if graph is not None else None,
        "seconds": round(time.monotonic() - started, 3),
    }


async def _search(cell: Cell, task, cfg: LMConfig, transport: Any, work_dir: Path, preset: str, settings: dict[str, Any]):
    from ..search.budgets import get_budget
    from ..search.executor import LocalExecutor
    from ..search.pipeline import run_search
    from ..store import STORE_FILENAME, RunDir

    budget = get_budget(preset, **{k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()})
    lm = LM(cfg, transport=transport, budget=budget.lm_budget())
    out = cell_dir(work_dir, cell)
    seeds = [load_graph(name) for name in budget.seeds]
    report = await run_search(
        task, lm, budget, RunDir(out, resume=(out / STORE_FILENAME).exists()), seeds, seed=cell.seed,
        executor=LocalExecutor(task, lm, 1),
    )
    best = report.best
    return best.program or task.seed_program, best.spec, best.val_score, lm
