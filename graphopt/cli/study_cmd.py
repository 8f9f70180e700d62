"""`graphopt study STUDY.yaml`: a grid of tasks x methods x seeds x program models, plus transfer rows."""

from __future__ import annotations

__all__ = ["study_command"]

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import ConfigError
from ..lm import levels_shown
from ..status import Status
from .app import app
from .common import CacheDir, ConfigFile, MetaModel, NoCache, OptimizerModel, ProgramModel, SetOption, console, make_lm, run_async
from ..app.executors import check_ray_address
from .executors import ExecutorName, RayAddress


def _prompt_tokens(study) -> dict[str, int]:
    from ..tasks import get_task

    out = {}
    for entry in study.tasks:
        task = get_task(entry.name, seed=study.seeds[0], **entry.options())
        sample = task.train[:5]
        chars = sum(sum(len(m["content"]) for m in task.seed_program.messages(ex.input)) for ex in sample)
        out[entry.name] = max(1, chars // max(len(sample), 1) // 4)
    return out


def _dry_run(study) -> None:
    from ..study.estimate import estimate_study
    from ..study.runner import check_study

    check_study(study)
    rows, total = estimate_study(study, _prompt_tokens(study))
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
    from ..search.executor import default_parallel
    from ..study import LocalCells, RayCells, StudyStore, load_study, run_study, summarize, write_outputs
    from .progress import Progress

    study = load_study(study_file)
    if dry_run:
        _dry_run(study)
        return
    out = out or Path("studies") / study.name
    if executor_name not in ("local", "ray"):
        raise ConfigError(f"unknown --executor {executor_name!r}: use local or ray")
    if ray_address and executor_name != "ray":
        raise ConfigError("--ray-address needs --executor ray")
    check_ray_address(ray_address)
    store = StudyStore(store_url, study.name) if store_url else StudyStore.in_dir(out, study.name)
    try:
        if store.exists() and not resume:
            raise ConfigError(f"{store_url or out} already holds study {study.name!r}: add --resume to finish it, or choose another --out")
        lm = make_lm(program_model, optimizer_model, meta_model, config_file=config_file, overrides=overrides,
                     cache_dir=cache_dir, no_cache=no_cache)
        if executor_name == "ray":
            cells = RayCells(lm.config, address=ray_address, parallel=parallel)
        else:
            cells = LocalCells(lm.config, lm.transport, parallel or min(4, default_parallel(lm)))
        console.print(f"study {study.name}: {len(study.cells())} cells, {cells.name} executor, {cells.parallel} in flight, dir {out}")
        progress: Progress | None = None

        def on_event(kind: str, data: dict[str, Any]) -> None:
            nonlocal progress
            if kind == "start":
                progress = Progress(data["total"], done=data["done"], what="cells")
                progress.show("resumed" if data["done"] else "")
            elif kind == "cell" and progress is not None:
                note = f"{data['key']} {data['status']}" + (f" test {data['test']:.3f}" if data.get("test") is not None else f": {data.get('reason', '')[:80]}")
                progress.add(data.get("usage"), note)
            elif kind == "end" and progress is not None:
                progress.close()

        out.mkdir(parents=True, exist_ok=True)
        try:
            run_async(run_study(study, store, cells, out.resolve(), on_event=on_event))
        finally:
            cells.close()
            lm.close()
        records = store.cells()
    finally:
        store.close()
    paths = write_outputs(study, records, out)
    _print_table(summarize(study, records), study.baseline)
    failed = [r for r in records if r.status != Status.done]
    if failed:
        console.print(f"{len(failed)} cells not done (first: {failed[0].key}: {failed[0].error}); run again with --resume")
    console.print(f"wrote {paths['csv']}, {paths['json']}, {paths['html']}")
