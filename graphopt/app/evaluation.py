"""The `evaluate` use case: run a program (or a baseline) on a task split, score it, report."""

from __future__ import annotations

__all__ = ["EvalRequest", "EvalReport", "evaluate"]

import dataclasses
from pathlib import Path
from typing import Any

from ..aio import run_sync
from ..lm import LM
from ..program.run import Evaluation, error_tally
from ..program.run import evaluate as score
from ..tasks.base import Task
from .checks import DEFAULT_MAX_ERROR_RATE, check_answer_length, check_cache_dir, check_error_rate, check_output
from .events import OnEvent, ignore
from .models import Connect, ModelRequest
from .output import write_json
from .task import TaskRequest, calling_levels


@dataclasses.dataclass(frozen=True)
class EvalRequest:
    """What to evaluate: the task and program, the models, the split, a baseline, where to write.

    `baseline` names one of `graphopt.baselines` (its program: `task.program`, default the cot
    shape); `samples`, `demos` and `temperature` are its options.
    """

    task: TaskRequest
    models: ModelRequest = ModelRequest()
    split: str = "test"
    limit: int | None = None
    out: Path | None = None
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE
    baseline: str | None = None
    samples: int = 5
    demos: int = 3
    temperature: float = 0.7


@dataclasses.dataclass(frozen=True)
class EvalReport:
    """What an evaluation found: the scores and traces, and the LM (closed) with its usage."""

    request: EvalRequest
    task: Task
    result: Evaluation
    lm: LM

    def to_dict(self) -> dict[str, Any]:
        """The `--out` file: task, split, baseline options, accuracy, traces and usage."""
        r = self.request
        run = {} if r.baseline is None else {"baseline": r.baseline, "samples": r.samples, "demos": r.demos, "temperature": r.temperature}
        return {"task": self.task.name, "split": r.split, **run, **self.result.to_dict(), "usage": self.lm.ledger.to_dict()}


def evaluate(request: EvalRequest, *, connect: Connect | None = None, on_event: OnEvent = ignore) -> EvalReport:
    """Evaluates the request's program on its split, then writes `request.out` when set.

    Args:
        request: what to run.
        connect: opens the LM (default `ModelRequest.connect`).
        on_event: told ("task", the built task) once the task and models are ready.

    Raises:
        ConfigError, TaskError: a bad option, model, cache dir or output (before any call).
        RunError: more than `max_error_rate` of the examples errored.
    """
    from ..baselines import check_baseline, run_baseline

    r = request
    levels = ("program",) if r.baseline is None else check_baseline(r.baseline, samples=r.samples, temperature=r.temperature)
    if r.out is not None:
        check_output(r.out, "--out", directory=False)
    program = r.task.program or ("cot" if r.baseline and not r.task.pipeline else None)
    task, start = dataclasses.replace(r.task, program=program).build()
    examples = task.split(r.split)[: r.limit]
    lm = (connect or ModelRequest.connect)(r.models, levels=calling_levels(task, *levels))
    on_event("task", task)
    try:
        check_cache_dir(lm)
        check_answer_length(lm, task.max_tokens)
        with error_tally() as tally:
            if r.baseline is None:
                result = run_sync(score(start, examples, task, lm))
            else:
                result = run_sync(run_baseline(
                    r.baseline, task, examples, lm, program=start, samples=r.samples, demos=r.demos, temperature=r.temperature,
                ))
    finally:
        lm.close()
    check_error_rate(tally, r.max_error_rate)
    report = EvalReport(r, task, result, lm)
    if r.out is not None:
        write_json(r.out, report.to_dict())
    return report
