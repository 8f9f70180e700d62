"""`graphopt optimize`: apply an optimizer graph to a task and write the optimized program.

Example:
    graphopt optimize --graph tgd_select --task word_sorting --difficulty easy --steps 3 --out runs/ws
"""

from __future__ import annotations

__all__ = ["optimize_command"]

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ..errors import BudgetExceeded, ConfigError
from ..graph.io import load_graph
from ..graph.validate import check
from ..lm.budget import Budget, Caps
from ..program.run import ErrorTally, error_tally, evaluate
from .app import app
from .checks import DEFAULT_MAX_ERROR_RATE, MaxErrorRate, check_answer_length, check_cache_dir, check_error_rate, check_output
from .common import (
    CacheDir, ConfigFile, JudgeModel, NoCache, OptimizerModel, ProgramModel, SetOption, console, make_lm, print_usage, run_async,
    write_json,
)
from .taskopts import (
    SplitSizes,
    describe_task,
    parse_split_sizes,
    AnswerTokens, Difficulty, Extract, InputKey, InputTemplate, Instruction, Metric, OutputFormat, Pipeline, Seed, Source,
    TargetKey, TaskName, calling_levels, task_and_program,
)

if TYPE_CHECKING:  # the loop pulls in LangGraph: imported when the command runs, so --help stays fast
    from ..lm import LM
    from ..loop import OptimizeResult, StepRecord
    from ..tasks.base import Task
    from ..program.model import Program


def _print_step(record: StepRecord) -> None:
    accepted = f"accepted {record.accepted}" if record.accepted else "kept the current program"
    scores = ", ".join(
        f"{c.program.id} val {c.val_score:.3f}" for c in record.candidates if c.val_score is not None
    ) or "no candidate"
    console.print(
        f"step {record.step}: {scores}; {len(record.dropped)} dropped; {accepted}; best val {record.best_val:.3f}"
    )


async def _run(
    start: Program, spec: Any, task: Task, lm: LM, test_limit: int | None, errors: tuple[ErrorTally, float],
    **loop_options: Any,
) -> tuple[OptimizeResult, float | None, float | None]:
    """The inner loop, then test accuracy of the start and best programs (None when the budget ran out).

    After each step the examples errored so far are held against the error-rate limit, so a run
    that is mostly failing stops there instead of after its last step.
    """
    from ..loop import optimize

    def on_step(record: StepRecord) -> None:
        _print_step(record)
        check_error_rate(*errors)

    result = await optimize(start, spec, task, lm, on_step=on_step, **loop_options)
    test = task.test[:test_limit]
    before = after = None
    try:
        before = (await evaluate(start, test, task, lm)).accuracy if test else None
        after = before if result.best_program == start else (await evaluate(result.best_program, test, task, lm)).accuracy
    except BudgetExceeded as exc:
        console.print(f"test not fully measured: {exc}")
    return result, before, after


def _fmt(score: float | None) -> str:
    return "n/a" if score is None else f"{score:.3f}"


@app.command("optimize")
def optimize_command(
    graph: Annotated[str, typer.Option("--graph", "-g", help="Graph file (.json/.yaml) or built-in name (tgd, opro, ...).")],
    task: TaskName,
    steps: Annotated[int, typer.Option("--steps", min=0, help="Optimizer steps.")] = 3,
    minibatch: Annotated[int, typer.Option("--minibatch", min=1, help="Train examples per step.")] = 8,
    val_limit: Annotated[int | None, typer.Option("--val-limit", min=1, help="Validate on the first N val examples.")] = None,
    test_limit: Annotated[int | None, typer.Option("--test-limit", min=1, help="Report test accuracy on the first N.")] = None,
    accept: Annotated[str, typer.Option("--accept", help="Keep a new program when val is no_worse or better.")] = "no_worse",
    program: Annotated[str | None, typer.Option("--program", help="Program JSON to start from, or a shape of the task's seed program: direct, cot, reason_then_answer (default: direct).")] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for program.json and history.json.")] = Path("runs/optimize"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite the program.json and history.json already in --out.")] = False,
    max_calls: Annotated[int | None, typer.Option("--max-calls", min=1, help="Cap on model calls (all levels).")] = None,
    max_dollars: Annotated[float | None, typer.Option("--max-dollars", min=0, help="Cap on dollars (all levels).")] = None,
    program_model: ProgramModel = None,
    optimizer_model: OptimizerModel = None,
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
    max_error_rate: MaxErrorRate = DEFAULT_MAX_ERROR_RATE,
) -> None:
    """Optimize a task's program with an optimizer graph; report val and test before and after.

    Examples whose program-model call failed after its retries are counted; more than
    --max-error-rate of them stops the command (exit 2, no files written), as does a fatal model
    error (bad key, unknown model) at once.
    """
    check_output(out, "--out", directory=True)
    if not force and (out / "program.json").exists():
        raise ConfigError(f"{out / 'program.json'} exists: add --force to overwrite it, or choose another --out")
    spec = check(load_graph(graph))
    the_task, start = task_and_program(
        task, program=program, pipeline=pipeline,
        source=source, difficulty=difficulty, seed=seed, input_key=input_key, target_key=target_key,
        input_template=input_template, instruction=instruction, output_format=output_format,
        extract=extract, metric=metric, answer_tokens=answer_tokens, sizes=parse_split_sizes(split_sizes),
    )
    budget = Budget(total=Caps(calls=max_calls, dollars=max_dollars))
    lm = make_lm(
        program_model, optimizer_model, judge_model=judge_model, config_file=config_file, overrides=overrides,
        cache_dir=cache_dir, no_cache=no_cache, budget=budget, levels=calling_levels(the_task, "program", "optimizer"),
    )
    console.print(describe_task(the_task), markup=False, soft_wrap=True)
    console.print(
        f"optimize {the_task.name} with graph {spec.name}: {steps} steps, minibatch {minibatch} "
        f"(program model {lm.model('program')}, optimizer model {lm.model('optimizer')})"
    )
    from ..loop import LoopSizes

    try:
        check_cache_dir(lm)
        check_answer_length(lm, the_task.max_tokens)
        with error_tally() as tally:
            result, test_before, test_after = run_async(_run(
                start, spec, the_task, lm, test_limit, (tally, max_error_rate),
                sizes=LoopSizes(steps=steps, minibatch=minibatch, val_limit=val_limit), accept=accept, seed=seed,
            ))
    finally:
        lm.close()
    check_error_rate(tally, max_error_rate)

    table = Table(title=f"{the_task.name}: {spec.name}", title_justify="left")
    for column in ("", "val", "test"):
        table.add_column(column, justify="left" if not column else "right")
    table.add_row("before", _fmt(result.initial_val), _fmt(test_before))
    table.add_row("after", _fmt(result.best_val), _fmt(test_after))
    console.print(table)
    if result.stopped:
        console.print(f"stopped early: {result.stop_reason}")
    console.print(f"best program:\n{result.best_program.render()}")
    if tally.errors:
        console.print(f"{tally.errors} of {tally.examples} program runs on examples errored (scored 0): {tally.first_error}", markup=False)
    print_usage(lm)

    scores = {"val_before": result.initial_val, "val_after": result.best_val, "val_after_stderr": result.best_val_stderr,
              "test_before": test_before, "test_after": test_after}
    write_json(out / "program.json", {
        "task": the_task.name, "graph": spec.name, "program": result.best_program.model_dump(mode="json"),
        "scores": scores, "models": {level: lm.model(level) for level in calling_levels(the_task, "program", "optimizer")},
        "stopped": result.stopped,
    })
    write_json(out / "history.json", {"task": the_task.name, **result.to_dict(), "usage_total": lm.ledger.to_dict()})
    console.print(f"wrote {out / 'program.json'} and {out / 'history.json'}")
