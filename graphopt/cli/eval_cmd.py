"""`graphopt eval`: run a program on a task split and report accuracy and usage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..app.evaluation import EvalRequest, evaluate
from ..app.models import ModelRequest
from ..app.task import TaskRequest
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


@app.command("eval")
def eval_command(
    task: TaskName,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, max=10_000_000, help="Evaluate only the first N examples.")] = None,
    split: Annotated[str, typer.Option("--split", help="train, val or test.")] = "test",
    program: Annotated[str | None, typer.Option("--program", help="Program JSON, or a shape of the task's seed program: direct, cot, reason_then_answer (default: direct).")] = None,
    program_model: ProgramModel = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the accuracy, traces and usage as JSON.")] = None,
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
    baseline: Annotated[str | None, typer.Option("--baseline", help="Run a built-in baseline: zero_shot_cot, few_shot_cot, self_consistency, best_of_n (from --program, default the cot shape).")] = None,
    samples: Annotated[int, typer.Option("--samples", min=1, help="Samples per example (self_consistency, best_of_n).")] = 5,
    demos: Annotated[int, typer.Option("--demos", min=1, help="Demos bootstrapped from train (few_shot_cot).")] = 3,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, max=2.0, help="Sampling temperature (self_consistency, best_of_n).")] = 0.7,
    optimizer_model: OptimizerModel = None,
    judge_model: JudgeModel = None,
) -> None:
    """Evaluate a program on a task: accuracy with its standard error, and the usage table.

    An example whose model call failed after its retries scores 0 and is counted as errored;
    more than --max-error-rate of them stops the command (exit 2, no --out file). A fatal model
    error (bad key, unknown model) stops it at once.

    --baseline runs one of the seed paper's baselines instead (best_of_n's judge is the
    --judge-model, as is the judge metric's, --metric judge).
    """
    request = EvalRequest(
        TaskRequest.pick(locals()), ModelRequest.pick(locals()), split=split, limit=limit, out=out,
        max_error_rate=max_error_rate, baseline=baseline, samples=samples, demos=demos, temperature=temperature,
    )
    report = evaluate(request, connect=connect_with(make_lm), on_event=print_task)
    result, lm = report.result, report.lm
    errored = f", {result.errors} errored" if result.errors else ""
    what = "" if baseline is None else f" {baseline}"
    console.print(
        f"{report.task.name}{what} [{split}] n={len(result.traces)}{errored}  accuracy {result.accuracy:.3f} ± {result.stderr:.3f}"
        f"  (model {lm.model('program')})",
        markup=False,  # "[test]" is the split, not a style
    )
    raised = [t.raised for t in result.traces if t.raised]
    if raised:
        console.print(f"{len(raised)} examples raised in the pipeline (scored 0); first: {raised[0]}", markup=False)
    print_usage(lm)
    if out is not None:
        console.print(f"wrote {out}")
