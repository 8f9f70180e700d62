"""`graphopt search`: prompt-optimize the seed graphs, search new structures, export the winner."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..app.models import ModelRequest
from ..app.structure_search import PlanRequest, SearchRequest, SearchSizes, search
from ..app.task import TaskRequest
from ..lm import LEVELS, levels_shown
from ..lm.budget import Caps
from ..status import Status
from .app import app
from .common import (
    CacheDir, ConfigFile, JudgeModel, MetaModel, NoCache, OptimizerModel, ProgramModel, SetOption, connect_with, console, make_lm,
    print_task, print_usage,
)
from .executors import ExecutorName, RayAddress
from .taskopts import (
    AnswerTokens, Difficulty, Extract, InputKey, InputTemplate, Instruction, Metric, OutputFormat, Pipeline, Seed, Source,
    SplitSizes, TargetKey, TaskName,
)


def _k(n: float) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else f"{n:.0f}"


def _fmt_usage(usage: dict[str, dict[str, float]]) -> str:
    """Spend so far, short enough for one line: "tokens program 5.6k optimizer 8.6k meta 4.3k"."""
    parts = [f"{level} {_k(usage[level].get('tokens', 0))}" for level in LEVELS if usage.get(level)]
    dollars = sum(u.get("cost", 0.0) for u in usage.values())
    return ("tokens " + " ".join(parts) if parts else "nothing spent") + (f" ${dollars:.4f}" if dollars else "")


class _Printer:
    """The search use case's events, printed; the progress line after each evaluation."""

    def __init__(self) -> None:
        self.on_event: Any = None

    def __call__(self, kind: str, data: Any) -> None:
        from .progress import search_progress

        if kind == "task":
            print_task(kind, data)
        elif kind == "start":
            console.print(
                f"search on {data['task'].name}, budget {data['plan'].name}, {data['parallel']} evaluation(s) in flight, "
                f"run dir {data['out']}"
            )
            self.on_event = search_progress(data["estimate"]["graphs"]["calls"], _progress)
        elif self.on_event is not None:
            self.on_event(kind, data)

    def close(self) -> None:
        if self.on_event is not None:
            self.on_event.progress.close()


def _progress(kind: str, data: dict[str, Any]) -> None:
    if kind == "phase":
        console.print(f"[bold]== {data['name']}[/bold] ({data['count']})")
    elif kind == "candidate":
        reused = " (from store)" if data["reused"] else ""
        status = data.get("status", Status.done)
        val = "  n/a" if data["val"] is None else f"{data['val']:.3f}"
        note = "" if status == Status.done else f" [{status}: {data.get('reason', '')[:100]}]"
        console.print(
            f"  {data['id']} {data['name'][:28]:<28} val {val} best {data['best']:.3f}"
            f" | {_fmt_usage(data['usage'])}{reused}{note}",
            soft_wrap=True,
        )
    elif kind == "prompt_edits":
        why = f" (dropped: {'; '.join(data['reasons'])[:120]})" if data["reasons"] else ""
        console.print(f"  {data['graph']}: {data['proposed']} prompt edits proposed, {data['kept']} kept{why}", soft_wrap=True)
    elif kind == "generation":
        console.print(
            f"  generation {data['generation']} done: best {data['best']:.3f} | {_fmt_usage(data['usage'])}",
            soft_wrap=True,
        )


@app.command("search")
def search_command(
    task: TaskName,
    budget: Annotated[str, typer.Option("--budget", help="tiny, small or medium.")] = "tiny",
    out: Annotated[Path | None, typer.Option("--out", help="Run directory (default: runs/TASK-DATE-TIME).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out without redoing finished work.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Estimate calls and tokens per level; spend nothing.")] = False,
    seed_graph: Annotated[list[str] | None, typer.Option("--seed-graph", metavar="GRAPH", help="Seed graph file or built-in name (repeatable); default: the budget's seeds.")] = None,
    max_calls: Annotated[int | None, typer.Option("--max-calls", min=1, help="Cap on model calls (all levels).")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens", min=1, help="Cap on tokens (all levels).")] = None,
    max_dollars: Annotated[float | None, typer.Option("--max-dollars", min=0, help="Cap on dollars (all levels).")] = None,
    level_cap: Annotated[list[str] | None, typer.Option("--level-cap", metavar="LEVEL.KIND=N", help="Cap one level (repeatable): KIND is calls, tokens or dollars, e.g. --level-cap program.tokens=20000.")] = None,
    generations: Annotated[int | None, typer.Option("--generations", min=0, max=10000, help="Structure search generations.")] = None,
    children: Annotated[int | None, typer.Option("--children", min=1, max=1000, help="Proposals per generation.")] = None,
    inner_steps: Annotated[int | None, typer.Option("--inner-steps", min=1, max=1000, help="Inner-loop steps per graph.")] = None,
    val_limit: Annotated[int | None, typer.Option("--val-limit", min=1, max=100000, help="Validation examples per graph.")] = None,
    screen: Annotated[int | None, typer.Option("--screen", min=0, max=100000, help="Validation examples of a race's screen (seeds and each generation's children are raced; the better half gets the full evaluation); 0 turns racing off.")] = None,
    screen_by: Annotated[str | None, typer.Option("--screen-by", help="What a race compares: metric (default) or likelihood (the log-probability of the targets: a dense score, the embedded program model only; the winner is still chosen on the metric).")] = None,
    test_limit: Annotated[int | None, typer.Option("--test-limit", min=1, max=1000000, help="Test examples in the final report.")] = None,
    selection: Annotated[str | None, typer.Option("--selection", help="Parent and survivor selection: frontier (per-example Pareto, default), tournament or pareto.")] = None,
    parallel: Annotated[int | None, typer.Option("--parallel", min=1, help="Graph evaluations in flight (default: 8 for API models, one per embedded-model instance).")] = None,
    executor_name: ExecutorName = "local",
    ray_address: RayAddress = None,
    store_url: Annotated[str | None, typer.Option("--store", metavar="URL", help="Keep the run store in this database (e.g. postgresql+psycopg://USER@HOST/DB) instead of --out/run.sqlite.")] = None,
    max_error_rate: Annotated[float, typer.Option("--max-error-rate", min=0, max=1, help="Share of model calls that may fail at the provider (after retries) before the search stops; it is resumable.")] = 0.02,
    program_model: ProgramModel = None,
    optimizer_model: OptimizerModel = None,
    meta_model: MetaModel = None,
    judge_model: JudgeModel = None,
    source: Source = None,
    difficulty: Difficulty = None,
    seed: Seed = 0,
    input_key: InputKey = None,
    target_key: TargetKey = None,
    input_template: InputTemplate = None,
    instruction: Instruction = None,
    output_format: OutputFormat = None,
    extract: Extract = None,
    metric: Metric = None,
    answer_tokens: AnswerTokens = None,
    split_sizes: SplitSizes = None,
    pipeline: Pipeline = None,
    cache_dir: CacheDir = None,
    no_cache: NoCache = False,
    config_file: ConfigFile = None,
    overrides: SetOption = None,
    program: Annotated[str | None, typer.Option("--program", help="Program JSON (or a shape: direct, cot, reason_then_answer) every graph starts from, instead of the task's seed.")] = None,
) -> None:
    """Search for the best optimizer graph for a task and save it as best.graph.json.

    The task options (--metric, --extract, --input-template, --pipeline, ...) are those of
    `graphopt optimize`; with --metric judge the --judge-model scores every answer.
    """
    from .dry_run import dry_run_table

    sizes = SearchSizes(generations, children, inner_steps, val_limit, screen, screen_by, test_limit, selection)
    plan = PlanRequest(budget, Caps(calls=max_calls, tokens=max_tokens, dollars=max_dollars), tuple(level_cap or ()),
                       sizes, tuple(seed_graph or ()))
    request = SearchRequest(
        TaskRequest.pick(locals()), ModelRequest.pick(locals()), plan, out=out, resume=resume, dry_run=dry_run,
        executor=(executor_name, ray_address), parallel=parallel, store_url=store_url, max_error_rate=max_error_rate,
    )
    printer = _Printer()
    try:
        outcome = search(request, connect=connect_with(make_lm), on_event=printer)
    finally:
        printer.close()
    lm, report = outcome.lm, outcome.report
    if report is None:  # a dry run
        table, line = dry_run_table(outcome.plan, outcome.estimate, lm, outcome.task.metric_levels)
        console.print(table)
        console.print(line, markup=False)
        return
    _print_result(report)
    print_usage(lm)


def _print_result(report: Any) -> None:
    """The search report: a row per seed, finalist and the winner, then why it won and the store's counts."""
    table = Table(title="Search result", title_justify="left")
    shown = levels_shown(level for row in report.rows for level, tokens in row.tokens.items() if tokens)
    # Tokens the response cache (or another evaluation's identical call) answered: work done, not spent.
    shown = [*shown, *(["cached"] if any(row.tokens.get("cached") for row in report.rows) else [])]
    columns = ("role", "id", "graph", "val", "test", "tok/answer", *(f"{level} tok" for level in shown), "val vs best seed (paired)")
    for column in columns:
        table.add_column(column, justify="left" if column in ("role", "id", "graph", "val vs best seed (paired)") else "right")
    for row in report.rows:
        table.add_row(
            row.role, row.candidate_id, row.name[:48], "n/a" if row.val_score is None else f"{row.val_score:.3f}",
            "n/a" if row.test_score is None else f"{row.test_score:.3f}",
            per_answer(row.per_example),
            *(f"{row.tokens.get(level, 0):,}" for level in shown),
            row.vs_best_seed,
        )
    console.print(table)
    why = next((row.why for row in report.rows if row.role == "best" and row.why), "")
    if why:
        console.print(f"why this winner: {why}", markup=False)
    console.print("tok/answer: program tokens (and calls, when more than one) to answer one test example with the "
                  "graph's tuned program: what it costs to use.", markup=False, style="dim")
    console.print(
        f"{report.candidates} graphs in the store, {report.reused} reused from it, {report.rejected} proposals rejected, "
        f"{report.failed} evaluations failed; "
        f"stopped: {report.stop_reason or 'finished'}"
    )
    console.print(f"best graph: {report.best_path}")


def per_answer(cost: dict[str, float]) -> str:
    """"412" or "1,236 (3 calls)": a program's tokens per answered example, and its calls when more than one."""
    if not cost:
        return "n/a"
    calls = cost.get("calls", 1.0)
    return f"{cost['tokens']:,.0f}" + (f" ({calls:.3g} calls)" if calls > 1.05 else "")
