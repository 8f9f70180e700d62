"""The `search` use case: prompt-optimize the seed graphs, search new structures, report the winner."""

from __future__ import annotations

__all__ = ["SearchSizes", "PlanRequest", "SearchRequest", "SearchOutcome", "search", "estimate_spend", "write_pictures",
           "JUDGE_CALL_TOKENS"]

import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..aio import run_sync
from ..errors import ConfigError
from ..lm import LM
from ..lm.budget import Caps
from ..tasks.base import Task
from .checks import check_answer_length, check_cache_dir, check_output
from .events import OnEvent, ignore
from .executors import check_executor, make_executor
from .models import Connect, ModelRequest
from .task import TaskRequest, calling_levels, prompt_tokens

if TYPE_CHECKING:
    from ..search.budgets import SearchBudget
    from ..search.pipeline import SearchReport

# One judge call per scored answer: the judge's prompt (rubric, input, target, answer) and its reply.
JUDGE_CALL_TOKENS = 400
CALLED_LEVELS = ("program", "optimizer", "meta")  # the levels a search calls (and the judge when the metric does)


@dataclasses.dataclass(frozen=True)
class SearchSizes:
    """Fields of the budget preset to replace (None: the preset's)."""

    generations: int | None = None
    children: int | None = None
    inner_steps: int | None = None
    val_limit: int | None = None
    screen: int | None = None
    screen_by: str | None = None
    test_limit: int | None = None
    selection: str | None = None


@dataclasses.dataclass(frozen=True)
class PlanRequest:
    """The search's budget: a preset (tiny, small, medium), its caps and sizes replaced, the seed graphs."""

    preset: str = "tiny"
    caps: Caps = Caps()
    level_caps: tuple[str, ...] = ()  # LEVEL.KIND=N
    sizes: SearchSizes = SearchSizes()
    seed_graphs: tuple[str, ...] = ()  # files or built-in names (none: the preset's)

    def build(self) -> SearchBudget:
        """The `SearchBudget`.

        Raises:
            ConfigError: an unknown preset, a bad cap or size.
        """
        from ..search.budgets import get_budget, parse_level_caps

        return get_budget(
            self.preset, calls=self.caps.calls, tokens=self.caps.tokens, dollars=self.caps.dollars,
            **dataclasses.asdict(self.sizes), seeds=self.seed_graphs or None,
            levels=parse_level_caps(list(self.level_caps)) if self.level_caps else None,
        )


@dataclasses.dataclass(frozen=True)
class SearchRequest:
    """A search: the task and program, the models, the plan, where it runs and where it writes.

    `out` None: runs/TASK-DATE-TIME. `executor`: local or ray (at `ray_address`); `parallel`
    None: the executor's default. `store_url`: a database instead of out/run.sqlite.
    """

    task: TaskRequest
    models: ModelRequest = ModelRequest()
    plan: PlanRequest = PlanRequest()
    out: Path | None = None
    resume: bool = False
    dry_run: bool = False
    executor: tuple[str, str | None] = ("local", None)  # name, Ray address
    parallel: int | None = None
    store_url: str | None = None
    max_error_rate: float = 0.02


@dataclasses.dataclass(frozen=True)
class SearchOutcome:
    """What a search did: its report (None for a dry run), the plan and its estimate, the LM (closed)."""

    task: Task
    plan: SearchBudget
    estimate: dict[str, dict[str, int]]
    lm: LM
    out: Path
    report: SearchReport | None = None


def search(request: SearchRequest, *, connect: Connect | None = None, on_event: OnEvent = ignore) -> SearchOutcome:
    """Runs the search (or, with `dry_run`, only estimates it), checking everything first.

    Args:
        request: what to run.
        connect: opens the LM (default `ModelRequest.connect`).
        on_event: told ("task", task), then ("start", {"task", "plan", "parallel", "out", "estimate"})
            before the run, then the search's own events (phase, candidate, generation, ...).

    Raises:
        ConfigError, TaskError: a bad option, graph, model, cache dir, run dir or output (before any call).
    """
    from ..graph.io import load_graph
    from ..graph.validate import check
    from ..store import RunDir

    r = request
    out = r.out
    if out is None:
        if r.resume:
            raise ConfigError("--resume needs --out RUN_DIR: the run directory to continue")
        out = Path("runs") / f"{r.task.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    plan = r.plan.build()
    task, start = r.task.build()
    if r.task.program is not None or r.task.pipeline is not None:  # every inner loop starts from the user's program
        task = task.with_seed_program(start)
    seeds = [check(load_graph(name)) for name in plan.seeds]  # an invalid seed graph: before anything runs
    check_executor(*r.executor)
    if not r.dry_run:
        check_output(out, "--out", directory=True)
    RunDir(out, r.store_url, r.resume).check()
    lm = (connect or ModelRequest.connect)(r.models, budget=plan.lm_budget(), levels=calling_levels(task, *CALLED_LEVELS))
    on_event("task", task)
    try:
        check_answer_length(lm, task.max_tokens)
        if not r.dry_run:
            check_cache_dir(lm)
            executor = make_executor(r.executor[0], task, lm, r.parallel, r.executor[1])
    except BaseException:
        lm.close()
        raise
    outcome = SearchOutcome(task, plan, estimate_spend(plan, task), lm, out)
    if r.dry_run:
        lm.close()
        return outcome
    return dataclasses.replace(outcome, report=_run(r, outcome, seeds, executor, on_event))


def _run(request: SearchRequest, outcome: SearchOutcome, seeds: list[Any], executor: Any, on_event: OnEvent) -> SearchReport:
    """The search itself; the report and the winner's drawing are written whatever happens to it."""
    from ..search.pipeline import run_search
    from ..store import RunDir

    out = outcome.out
    try:
        on_event("start", {"task": outcome.task, "plan": outcome.plan, "parallel": executor.parallel, "out": out,
                           "estimate": outcome.estimate})
        report = run_sync(run_search(
            outcome.task, outcome.lm, outcome.plan, RunDir(out, request.store_url, request.resume), seeds,
            seed=request.task.seed, on_event=on_event, executor=executor, max_error_rate=request.max_error_rate,
        ))
    except ConfigError:
        raise  # refused before anything ran (another run's dir, its lock): leave its files alone
    except BaseException:
        write_pictures(out)  # a failed or interrupted run gets its report too
        raise
    else:
        write_pictures(out)
    finally:
        executor.close()
        outcome.lm.close()
    return report


def estimate_spend(plan: SearchBudget, task: Task) -> dict[str, dict[str, int]]:
    """The search's upper estimate per level; with a judge metric, one judge call per program call."""
    from ..search.budgets import estimate

    tokens = prompt_tokens(task)
    figures = estimate(plan, prompt_tokens=tokens)
    if "judge" in task.metric_levels and "judge" not in figures:
        calls = figures["program"]["calls"]
        figures["judge"] = {"calls": calls, "tokens": calls * (tokens + JUDGE_CALL_TOKENS)}
    return figures


def write_pictures(out: Path) -> None:
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
            from ..graph.io import load_graph
            from ..viz.dot import render

            render(load_graph(best), out / "best.graph.svg")
        except Exception:  # noqa: BLE001  (graphviz may be missing; the graph file is what matters)
            pass
