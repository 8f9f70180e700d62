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

from ..app.models import ModelRequest
from ..app.optimization import OptimizeRequest
from ..sizes import LoopSizes
from ..app.optimization import optimize as run_optimize
from ..app.task import TaskRequest
from ..lm.budget import Caps
from .app import app
from .checks import DEFAULT_MAX_ERROR_RATE, MaxErrorRate
from .common import (
    CacheDir, ConfigFile, JudgeModel, NoCache, OptimizerModel, ProgramModel, SetOption, connect_with, console, make_lm,
    print_task, print_usage,
)
from .taskopts import (
    AnswerTokens, Difficulty, Extract, InputKey, InputTemplate, Instruction, Metric, OutputFormat, Pipeline, Seed, Source,
    SplitSizes, TargetKey, TaskName,
)

if TYPE_CHECKING:
    from ..loop import StepRecord


def _print_step(record: StepRecord) -> None:
    accepted = f"accepted {record.accepted}" if record.accepted else "kept the current program"
    scores = ", ".join(
        f"{c.program.id} val {c.val_score:.3f}" for c in record.candidates if c.val_score is not None
    ) or "no candidate"
    console.print(
        f"step {record.step}: {scores}; {len(record.dropped)} dropped; {accepted}; best val {record.best_val:.3f}"
    )


def _progress(kind: str, data: Any) -> None:
    """The optimize use case's events, printed."""
    if kind == "start":
        lm = data["lm"]
        console.print(
            f"optimize {data['task'].name} with graph {data['graph'].name}: {data['loop'].steps} steps, minibatch {data['loop'].minibatch} "
            f"(program model {lm.model('program')}, optimizer model {lm.model('optimizer')})"
        )
    elif kind == "step":
        _print_step(data)
    elif kind == "test_cut":
        console.print(f"test not fully measured: {data}")
    else:
        print_task(kind, data)


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
    request = OptimizeRequest(
        graph, TaskRequest.pick(locals()), ModelRequest.pick(locals()),
        LoopSizes(steps=steps, minibatch=minibatch, val_limit=val_limit), accept=accept, test_limit=test_limit,
        caps=Caps(calls=max_calls, dollars=max_dollars), out=out, force=force, max_error_rate=max_error_rate,
    )
    report = run_optimize(request, connect=connect_with(make_lm), on_event=_progress)
    result, lm = report.result, report.lm
    table = Table(title=f"{report.task.name}: {report.graph.name}", title_justify="left")
    for column in ("", "val", "test"):
        table.add_column(column, justify="left" if not column else "right")
    table.add_row("before", _fmt(result.initial_val), _fmt(report.test_before))
    table.add_row("after", _fmt(result.best_val), _fmt(report.test_after))
    console.print(table)
    if result.stopped:
        console.print(f"stopped early: {result.stop_reason}")
    console.print(f"best program:\n{result.best_program.render()}")
    tally = report.tally
    if tally.errors:
        console.print(f"{tally.errors} of {tally.examples} program runs on examples errored (scored 0): {tally.first_error}", markup=False)
    print_usage(lm)
    console.print(f"wrote {out / 'program.json'} and {out / 'history.json'}")
