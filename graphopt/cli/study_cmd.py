"""`graphopt study STUDY.yaml`: a grid of tasks x methods x seeds x program models, plus transfer rows."""

from __future__ import annotations

__all__ = ["study_command"]

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..app.models import ModelRequest
from ..app.study_run import StudyRequest, estimate, study
from ..lm import levels_shown
from ..status import Status
from .app import app
from .common import CacheDir, ConfigFile, MetaModel, NoCache, OptimizerModel, ProgramModel, SetOption, connect_with, console, make_lm
from .executors import ExecutorName, RayAddress
from .progress import Progress


def _dry_run(study_file: Path) -> None:
    study, rows, total = estimate(study_file)
    console.print(f"Dry run of study {study.name}: {len(rows)} cells")

    def spend(figures: dict) -> str:
        shown = levels_shown(lvl for lvl, f in figures.items() if f.get("calls"))
        return ", ".join(f"{lvl} {figures[lvl]['calls']:,} calls {figures[lvl]['tokens']:,} tok" for lvl in shown)

    for cell, figures in rows:
        console.print(f"  {cell.key}: {spend(figures)}", soft_wrap=True, highlight=False)
    console.print(f"total: {spend(total)}", soft_wrap=True, highlight=False)
    console.print("Upper estimates before caching; nothing was spent.")


def _print_table(rows, baseline: str | None) -> None:
    table = Table(title="Study result", title_justify="left")
    shown = levels_shown(lvl for r in rows for lvl, tokens in r.tokens.items() if tokens)
    for column in ("task", "method", "seeds", "test (mean ± 95% CI)", f"vs {baseline or 'baseline'} (paired)", *(f"{lvl} tok" for lvl in shown), "$"):
        table.add_column(column, justify="right" if "tok" in column or column == "$" else "left")
    for r in rows:
        table.add_row(r.task, r.method, f"{r.n}/{r.cells}", r.score_text, r.vs_text,
                      *(f"{r.tokens.get(lvl, 0):,}" for lvl in shown), f"{sum(r.dollars.values()):.4f}")
    console.print(table)


class _Printer:
    """The study use case's events: the executor line, then the progress line after each cell."""

    def __init__(self) -> None:
        self.progress: Progress | None = None

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "cells":
            study, cells = data["spec"], data["cells"]
            console.print(f"study {study.name}: {len(study.cells())} cells, {cells.name} executor, {cells.parallel} in flight, dir {data['out']}")
        elif kind == "start":
            self.progress = Progress(data["total"], done=data["done"], what="cells")
            self.progress.show("resumed" if data["done"] else "")
        elif kind == "cell" and self.progress is not None:
            note = f"{data['key']} {data['status']}" + (f" test {data['test']:.3f}" if data.get("test") is not None else f": {data.get('reason', '')[:80]}")
            self.progress.add(data.get("usage"), note)
        elif kind == "end" and self.progress is not None:
            self.progress.close()


@app.command("study")
def study_command(
    study_file: Annotated[Path, typer.Argument(metavar="STUDY.yaml", help="The study file (see examples/study.yaml).")],
    out: Annotated[Path | None, typer.Option("--out", help="Study directory (default: studies/NAME).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Run the cells a killed or failed study did not finish; done cells are kept.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the cells and estimated calls and tokens per level; spend nothing.")] = False,
    parallel: Annotated[int | None, typer.Option("--parallel", min=1, help="Cells in flight (default: one per embedded-model instance, 4 for API models; on Ray the cluster's CPUs).")] = None,
    executor_name: ExecutorName = "local",
    ray_address: RayAddress = None,
    store_url: Annotated[str | None, typer.Option("--store", metavar="URL", help="Keep the study store in this database instead of --out/study.sqlite.")] = None,
    program_model: ProgramModel = None,
    optimizer_model: OptimizerModel = None,
    meta_model: MetaModel = None,
    cache_dir: CacheDir = None,
    no_cache: NoCache = False,
    config_file: ConfigFile = None,
    overrides: SetOption = None,
) -> None:
    """Run a study: every (task, method, seed, program model) cell, then a table with confidence intervals."""
    if dry_run:
        _dry_run(study_file)
        return
    request = StudyRequest(study_file, ModelRequest.pick(locals()), out=out, resume=resume,
                           executor=(executor_name, ray_address), parallel=parallel, store_url=store_url)
    printer = _Printer()
    outcome = study(request, connect=connect_with(make_lm), on_event=printer)
    records = outcome.records
    _print_table(outcome.rows, outcome.spec.baseline)
    failed = [r for r in records if r.status != Status.done]
    if failed:
        console.print(f"{len(failed)} cells not done (first: {failed[0].key}: {failed[0].error}); run again with --resume")
    paths = outcome.paths
    console.print(f"wrote {paths['csv']}, {paths['json']}, {paths['html']}")
