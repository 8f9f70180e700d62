"""Running one study cell: build its task, let its method find a program, score it on the test split.

A `CellJob` is what an executor runs, in this process or on a Ray worker: plain data (the cell, the
study, the study's directory and, for a transfer cell, the graph its source search found) and
`run(config, transport)` with the model settings (`LMConfig`, never a key) and a transport. It
returns plain data: the test score, the score of every test example (for paired comparisons), the
validation score, the cell's own usage per level, the program and, for a search, the winning graph.

Each method kind is a small object with `find(cell) -> Found`: `ZeroShot`, `FewShot`,
`RunGraph` (a graph run by the inner loop; a transfer cell runs its source's winner this way) and
`Search`.
"""

from __future__ import annotations

__all__ = ["CellJob", "CellRun", "Found", "ZeroShot", "FewShot", "RunGraph", "Search", "cell_dir"]

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import RunError
from ..graph.io import load_graph
from ..graph.spec import GraphSpec
from ..lm import LM, Budget, LMConfig, usage_scope
from ..program.model import Demo, Program
from ..program.run import evaluate
from ..tasks import Task, get_task
from .spec import Cell, CellSizes, StudySpec


def cell_dir(root: Path, cell: Cell) -> Path:
    """Where a search cell keeps its run directory (so a killed cell's search resumes)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", cell.key).strip("_")
    return root / "cells" / slug


@dataclass(frozen=True)
class CellRun:
    """What a method needs to run for one cell: its task, seed, loop sizes, run directory and models."""

    task: Task
    seed: int
    loop: CellSizes
    run_dir: Path
    config: LMConfig
    transport: Any

    def lm(self, budget: Budget | None = None) -> LM:
        return LM(self.config, transport=self.transport, budget=budget)


@dataclass(frozen=True)
class Found:
    """A method's program, the graph that made it (if any), its validation score, and the client it used."""

    program: Program
    graph: GraphSpec | None
    val: float | None
    lm: LM


class Method(Protocol):
    async def find(self, cell: CellRun) -> Found: ...


@dataclass(frozen=True)
class ZeroShot:
    async def find(self, cell: CellRun) -> Found:
        return Found(cell.task.seed_program, None, None, cell.lm())


@dataclass(frozen=True)
class FewShot:
    """The first `demos` train examples, as labeled demos of the seed program."""

    demos: int

    def program(self, task: Task) -> Program:
        return task.seed_program.with_demos(tuple(Demo(input=ex.input, output=ex.target) for ex in task.train[: self.demos]))

    async def find(self, cell: CellRun) -> Found:
        return Found(self.program(cell.task), None, None, cell.lm())


@dataclass(frozen=True)
class RunGraph:
    """A graph run by the inner loop on the cell's task, from the seed program."""

    graph: GraphSpec

    async def find(self, cell: CellRun) -> Found:
        from ..loop import optimize

        lm = cell.lm()
        result = await optimize(cell.task.seed_program, self.graph, cell.task, lm, cell.loop, seed=cell.seed)
        return Found(result.best_program, self.graph, result.best_val, lm)


@dataclass(frozen=True)
class Search:
    """A structure search with a preset and its overrides; a killed cell's search resumes from its run directory."""

    preset: str
    settings: dict[str, Any]

    async def find(self, cell: CellRun) -> Found:
        from ..search.budgets import get_budget
        from ..search.executor import LocalExecutor
        from ..search.pipeline import run_search
        from ..store import STORE_FILENAME, RunDir

        budget = get_budget(self.preset, **{k: tuple(v) if isinstance(v, list) else v for k, v in self.settings.items()})
        lm = cell.lm(budget.lm_budget())
        seeds = [load_graph(name) for name in budget.seeds]
        where = RunDir(cell.run_dir, resume=(cell.run_dir / STORE_FILENAME).exists())
        report = await run_search(cell.task, lm, budget, where, seeds, seed=cell.seed, executor=LocalExecutor(cell.task, lm, 1))
        best = report.best
        return Found(best.program or cell.task.seed_program, best.spec, best.val_score, lm)


@dataclass(frozen=True)
class CellJob:
    """One cell as a job: the cell, its study, the study's directory, and a transfer cell's source graph."""

    cell: Cell
    study: StudySpec
    work_dir: Path
    source_graph: dict[str, Any] | None = None

    def method(self) -> Method:
        """What finds the cell's program."""
        if self.cell.source is not None:
            return RunGraph(GraphSpec.model_validate(self.source_graph))
        method = self.study.method(self.cell.method)
        if method.kind == "search":
            return Search(method.budget, method.settings)
        if method.kind == "graph":
            return RunGraph(load_graph(method.graph or ""))
        return FewShot(method.demos) if method.kind == "few-shot" else ZeroShot()

    async def run(self, config: LMConfig, transport: Any) -> dict[str, Any]:
        """Runs the cell and returns its result (JSON data).

        Args:
            config: the model settings; the cell's program model replaces the program level's.
            transport: where the cell's requests go (shared by the cells of a process).

        Raises:
            GraphoptError: the task, graph or search cannot run (the runner records the cell failed).
        """
        started = time.monotonic()
        cell, loop = self.cell, self.study.loop
        entry = self.study.task(cell.task)
        task = get_task(entry.name, seed=cell.seed, **entry.options())
        config = config.with_models(program=cell.model) if cell.model else config
        with usage_scope() as spent:
            found = await self.method().find(CellRun(task, cell.seed, loop, cell_dir(self.work_dir, cell), config, transport))
            test = await evaluate(found.program, task.test[: loop.test_limit], task, found.lm)
            found.lm.cache.close()
        failed = [t for t in test.traces if t.error]
        if failed:  # an example with no answer is not a wrong answer: no test score from it
            raise RunError(f"{len(failed)} of {len(test.traces)} test examples got no answer (model calls failed at the "
                           f"provider: {failed[0].error[:200]}); --resume runs the cell again")
        scores = {t.example.id: t.score for t in test.traces}
        return {
            "test": sum(scores.values()) / len(scores) if scores else 0.0,
            "scores": scores,
            "val": found.val,
            "usage": spent.to_dict(),
            "program": found.program.model_dump(mode="json"),
            "graph": found.graph.model_dump(mode="json") if found.graph is not None else None,
            "seconds": round(time.monotonic() - started, 3),
        }
