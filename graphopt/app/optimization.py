"""The `optimize` use case: run an optimizer graph's inner loop on a task, measure test, write the program."""

from __future__ import annotations

__all__ = ["OptimizeRequest", "OptimizeReport", "optimize"]

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..aio import run_sync
from ..errors import BudgetExceeded, ConfigError
from ..lm import LM
from ..lm.budget import Budget, Caps
from ..program.model import Program
from ..program.run import ErrorTally, error_tally, evaluate
from ..sizes import LoopSizes
from ..tasks.base import Task
from .checks import DEFAULT_MAX_ERROR_RATE, check_answer_length, check_cache_dir, check_error_rate, check_output
from .events import OnEvent, ignore
from .models import Connect, ModelRequest
from .output import write_json
from .task import TaskRequest, calling_levels

if TYPE_CHECKING:  # the loop pulls in LangGraph: imported when the use case runs
    from ..graph.spec import GraphSpec
    from ..loop import OptimizeResult

CALLED_LEVELS = ("program", "optimizer")  # the levels the inner loop calls (and the judge when the metric does)


@dataclasses.dataclass(frozen=True)
class OptimizeRequest:
    """What to optimize: the graph (a file or a built-in name), the task and program, the models,
    the loop's sizes and acceptance rule, the test examples, the caps (calls, dollars) and the
    output directory."""

    graph: str
    task: TaskRequest
    models: ModelRequest = ModelRequest()
    loop: LoopSizes = LoopSizes()
    accept: str = "no_worse"
    test_limit: int | None = None
    caps: Caps = Caps()
    out: Path = Path("runs/optimize")
    force: bool = False
    max_error_rate: float = DEFAULT_MAX_ERROR_RATE


@dataclasses.dataclass(frozen=True)
class OptimizeReport:
    """The loop's result, test accuracy before and after (None: not measured), errors and the LM (closed)."""

    task: Task
    graph: GraphSpec
    result: OptimizeResult
    test_before: float | None
    test_after: float | None
    tally: ErrorTally
    lm: LM

    def files(self) -> dict[str, dict[str, Any]]:
        """program.json and history.json."""
        r = self.result
        scores = {"val_before": r.initial_val, "val_after": r.best_val, "val_after_stderr": r.best_val_stderr,
                  "test_before": self.test_before, "test_after": self.test_after}
        program = {
            "task": self.task.name, "graph": self.graph.name, "program": r.best_program.model_dump(mode="json"),
            "scores": scores, "models": {level: self.lm.model(level) for level in calling_levels(self.task, *CALLED_LEVELS)},
            "stopped": r.stopped,
        }
        history = {"task": self.task.name, **r.to_dict(), "usage_total": self.lm.ledger.to_dict()}
        return {"program.json": program, "history.json": history}


def optimize(request: OptimizeRequest, *, connect: Connect | None = None, on_event: OnEvent = ignore) -> OptimizeReport:
    """Optimizes the request's program with its graph, then writes program.json and history.json in `out`.

    Args:
        request: what to run.
        connect: opens the LM (default `ModelRequest.connect`).
        on_event: told ("task", task) and ("start", {"task", "graph", "lm", "loop"}) before the loop,
            ("step", StepRecord) after each step, ("test_cut", BudgetExceeded) when the caps cut
            the test measurement.

    Raises:
        ConfigError, TaskError: a bad option, graph, model, cache dir or output (before any call).
        RunError: more than `max_error_rate` of the examples errored (checked after each step).
    """
    from ..graph.io import load_graph
    from ..graph.validate import check

    r = request
    check_output(r.out, "--out", directory=True)
    if not r.force and (r.out / "program.json").exists():
        raise ConfigError(f"{r.out / 'program.json'} exists: add --force to overwrite it, or choose another --out")
    spec = check(load_graph(r.graph))
    task, start = r.task.build()
    lm = (connect or ModelRequest.connect)(r.models, budget=Budget(total=r.caps), levels=calling_levels(task, *CALLED_LEVELS))
    on_event("task", task)
    on_event("start", {"task": task, "graph": spec, "lm": lm, "loop": r.loop})
    try:
        check_cache_dir(lm)
        check_answer_length(lm, task.max_tokens)
        with error_tally() as tally:
            result, before, after = run_sync(_run(start, spec, task, lm, r, tally, on_event))
    finally:
        lm.close()
    check_error_rate(tally, r.max_error_rate)
    report = OptimizeReport(task, spec, result, before, after, tally, lm)
    for name, data in report.files().items():
        write_json(r.out / name, data)
    return report


async def _run(
    start: Program, spec: GraphSpec, task: Task, lm: LM, request: OptimizeRequest, tally: ErrorTally, on_event: OnEvent,
) -> tuple[OptimizeResult, float | None, float | None]:
    """The inner loop, then test accuracy of the start and best programs (None when the budget ran out).

    After each step the examples errored so far are held against the error-rate limit, so a run
    that is mostly failing stops there instead of after its last step.
    """
    from ..loop import optimize as inner_loop

    def on_step(record: Any) -> None:
        on_event("step", record)
        check_error_rate(tally, request.max_error_rate)

    result = await inner_loop(start, spec, task, lm, request.loop, accept=request.accept, seed=request.task.seed, on_step=on_step)
    test = task.test[: request.test_limit]
    before = after = None
    try:
        before = (await evaluate(start, test, task, lm)).accuracy if test else None
        after = before if result.best_program == start else (await evaluate(result.best_program, test, task, lm)).accuracy
    except BudgetExceeded as exc:
        on_event("test_cut", exc)
    return result, before, after
