"""`graphopt search`: prompt-optimize the seed graphs, search new structures, export the winner."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..errors import ConfigError
from ..graph.io import load_graph
from ..lm import LEVELS, levels_shown
from ..status import Status
from ..tasks.base import Task
from .app import app
from .checks import check_answer_length, check_cache_dir, check_output
from .executors import ExecutorName, RayAddress, check_executor, make_executor
from .common import (
    CacheDir, ConfigFile, JudgeModel, MetaModel, NoCache, OptimizerModel, ProgramModel, SetOption, console, make_lm, print_usage,
    run_async,
)
from .taskopts import (
    SplitSizes,
    describe_task,
    parse_split_sizes,
    AnswerTokens, Difficulty, Extract, InputKey, InputTemplate, Instruction, Metric, OutputFormat, Pipeline, Seed, Source,
    TargetKey, TaskName, calling_levels, task_and_program,
)

# One judge call per scored answer: the judge's prompt (rubric, input, target, answer) and its reply.
JUDGE_CALL_TOKENS = 400


def _k(n: float) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else f"{n:.0f}"


def _fmt_usage(usage: dict[str, dict[str, float]]) -> str:
    """Spend so far, short enough for one line: "tokens program 5.6k optimizer 8.6k meta 4.3k"."""
    parts = [f"{level} {_k(usage[level].get('tokens', 0))}" for level in LEVELS if usage.get(level)]
    dollars = sum(u.get("cost", 0.0) for u in usage.values())
    return ("tokens " + " ".join(parts) if parts else "nothing spent") + (f" ${dollars:.4f}" if dollars else "")


def _prompt_tokens(task: Task) -> int:
    """About how many tokens the seed program's prompt has (a quarter of its characters, on 5 train examples)."""
    sample = task.train[:5]
    chars = sum(sum(len(m["content"]) for m in task.seed_program.messages(ex.input)) for ex in sample)
    return max(1, chars // max(len(sample), 1) // 4)


def _estimate(plan: Any, task: Task) -> dict[str, dict[str, int]]:
    """The search's upper estimate per level; with a judge metric, one judge call per program call."""
    from ..search.budgets import estimate

    prompt_tokens = _prompt_tokens(task)
    figures = estimate(plan, prompt_tokens=prompt_tokens)
    if "judge" in task.metric_levels and "judge" not in figures:
        calls = figures["program"]["calls"]
        figures["judge"] = {"calls": calls, "tokens": calls * (prompt_tokens + JUDGE_CALL_TOKENS)}
    return figures


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
    from ..search.budgets import get_budget, parse_level_caps
    from ..graph.validate import check
    from ..search.pipeline import check_run_dir, run_search
    from .dry_run import dry_run_table

    if out is None:
        if resume:
            raise ConfigError("--resume needs --out RUN_DIR: the run directory to continue")
        out = Path("runs") / f"{task}-{time.strftime('%Y%m%d-%H%M%S')}"

    plan = get_budget(
        budget,
        calls=max_calls,
        tokens=max_tokens,
        dollars=max_dollars,
        generations=generations,
        children=children,
        inner_steps=inner_steps,
        val_limit=val_limit,
        screen=screen,
        screen_by=screen_by,
        test_limit=test_limit,
        seeds=tuple(seed_graph) if seed_graph else None,
        selection=selection,
        levels=parse_level_caps(level_cap) if level_cap else None,
    )
    the_task, start = task_and_program(
        task, program=program, pipeline=pipeline,
        source=source, difficulty=difficulty, seed=seed, input_key=input_key, target_key=target_key,
        input_template=input_template, instruction=instruction, output_format=output_format,
        extract=extract, metric=metric, answer_tokens=answer_tokens, sizes=parse_split_sizes(split_sizes),
    )
    if program is not None or pipeline is not None:  # every inner loop starts from the user's program
        the_task = the_task.with_seed_program(start)
    seeds = [check(load_graph(name)) for name in plan.seeds]  # an invalid seed graph: before anything runs
    check_executor(executor_name, ray_address)
    if not dry_run:
        check_output(out, "--out", directory=True)
    check_run_dir(out, resume, store_url)
    lm = make_lm(
        program_model, optimizer_model, meta_model, judge_model=judge_model, config_file=config_file, overrides=overrides,
        cache_dir=cache_dir, no_cache=no_cache, budget=plan.lm_budget(), levels=calling_levels(the_task, "program", "optimizer", "meta"),
    )
    console.print(describe_task(the_task), markup=False, soft_wrap=True)
    try:
        check_answer_length(lm, the_task.max_tokens)
    except ConfigError:
        lm.close()
        raise
    if dry_run:
        table, line = dry_run_table(plan, _estimate(plan, the_task), lm, the_task.metric_levels)
        lm.close()
        console.print(table)
        console.print(line, markup=False)
        return
    try:
        check_cache_dir(lm)
        executor = make_executor(executor_name, the_task, lm, parallel, ray_address)
    except BaseException:
        lm.close()
        raise
    console.print(f"search on {the_task.name}, budget {plan.name}, {executor.parallel} evaluation(s) in flight, run dir {out}")
    from .progress import search_progress

    on_event = search_progress(_estimate(plan, the_task)["graphs"]["calls"], _progress)
    try:
        report = run_async(run_search(
            the_task, lm, plan, out, seeds, resume=resume, seed=seed, on_event=on_event,
            executor=executor, max_error_rate=max_error_rate, store_url=store_url,
        ))
    except ConfigError:
        raise  # refused before anything ran (another run's dir, its lock): leave its files alone
    except BaseException:
        _write_pictures(out)  # a failed or interrupted run gets its report too
        raise
    else:
        _write_pictures(out)
    finally:
        on_event.progress.close()
        executor.close()
        lm.close()
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
    print_usage(lm)


def per_answer(cost: dict[str, float]) -> str:
    """"412" or "1,236 (3 calls)": a program's tokens per answered example, and its calls when more than one."""
    if not cost:
        return "n/a"
    calls = cost.get("calls", 1.0)
    return f"{cost['tokens']:,.0f}" + (f" ({calls:.3g} calls)" if calls > 1.05 else "")


def _write_pictures(out: Path) -> None:
    """The report and the winner's drawing, after the run's status and spend are stored.

    Written whatever happened to the search (a killed or failed run has a report too); they
    never change its outcome, so a failure to draw is ignored.
    """
    if not (out / "run.sqlite").is_file() and not (out / "store.json").is_file():
        return
    try:
        from ..viz.report import write_report

        write_report(out)
    except Exception:  # noqa: BLE001
        pass
    best = out / "best.graph.json"
    if best.is_file():
        try:
            from ..viz.dot import render

            render(load_graph(best), out / "best.graph.svg")
        except Exception:  # noqa: BLE001  (graphviz may be missing; the graph file is what matters)
            pass
