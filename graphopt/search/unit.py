"""One graph evaluation as a unit of work: what a worker needs, what it gives back.

A unit is plain data (the graph spec, the program it starts from, the inner loop's sizes), so an
executor can run it in this process or ship it to another one. `run_unit` is the worker's side:
it runs the inner loop inside its own usage scope and never touches the run store; the driver
that submitted the unit writes the store from the `UnitResult`.

Statuses:
- ``done``: the inner loop finished; its validation score is a measurement.
- ``partial``: a budget cap stopped the inner loop; the best program so far and its scores are
  kept, but a resumed run with more budget evaluates the graph again.
- ``failed``: the graph could not be compiled or run, or some of its model calls (any level)
  failed at the provider after the client's retries: a zero scored for a failed program call,
  or a critique dropped for a failed optimizer call, is not a measurement. The reason says which.
"""

from __future__ import annotations

__all__ = ["EvalUnit", "UnitResult", "run_unit", "UNIT_STATUSES", "merged_usage", "work_tokens"]

import traceback
from dataclasses import dataclass, field
from typing import Any

from ..errors import BudgetExceeded, InternalError, LLMError, is_bug
from ..graph.spec import GraphSpec
from ..lm import LM, Ledger, sample_place, usage_scope
from ..loop import OptimizeResult, optimize
from ..sizes import LoopSizes
from ..tasks.base import Task
from ..program.model import Program
from ..status import Status

UNIT_STATUSES = (Status.done, Status.partial, Status.failed)


@dataclass(frozen=True)
class EvalUnit:
    """One inner-loop run of one graph.

    Attributes:
        candidate_id: the store's id of the graph (for logs and executors; the worker does not write).
        spec: the optimizer graph.
        program: the program the inner loop starts from.
        sizes, seed: the inner loop's sizes (`graphopt.loop.LoopSizes`) and seed.
        final_ids: a screen: the returned program is scored on these validation examples only.
        resume: a screen's inner-loop result (`OptimizeResult.to_dict()`) to continue from.
    """

    candidate_id: str
    spec: GraphSpec
    program: Program
    sizes: LoopSizes
    seed: int = 0
    final_ids: tuple[str, ...] | None = None
    resume: dict[str, Any] | None = None


@dataclass
class UnitResult:
    """What a worker returns for one unit.

    Attributes:
        status: one of `UNIT_STATUSES`.
        reason: why it is partial or failed ("" when done).
        result: the inner loop's result as a dict (`OptimizeResult.to_dict()`), None if it never ran.
        usage: the unit's own usage, a `Ledger.to_dict()`.
        traces, errors: program runs made and how many of them failed at the provider.
        failures: model calls of any level that failed for good (after the client's retries).
    """

    status: Status
    reason: str = ""
    result: dict[str, Any] | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    traces: int = 0
    errors: int = 0
    failures: int = 0

    def __post_init__(self) -> None:
        self.status = Status(self.status)  # a result shipped back as plain data

    @property
    def provider_failed(self) -> bool:
        """True when it failed only because model calls failed at the provider (worth a retry)."""
        return self.status == Status.failed and self.failures > 0


async def run_unit(unit: EvalUnit, task: Task, lm: LM) -> UnitResult:
    """Runs the inner loop of one unit with its own usage account.

    Raises:
        LLMError: a fatal provider error (bad key, unknown model, ...): the command must stop.
    """
    with usage_scope() as spent, sample_place(unit.candidate_id):
        try:
            result = await optimize(
                unit.program, unit.spec, task, lm,
                unit.sizes, seed=unit.seed,
                final_ids=unit.final_ids,
                resume=OptimizeResult.from_dict(unit.resume) if unit.resume else None,
            )
        except LLMError as exc:
            if getattr(exc, "fatal", not exc.retryable):
                raise
            return UnitResult(Status.failed, f"provider error: {exc}", usage=spent.to_dict(), failures=max(1, spent.total().failures))
        except BudgetExceeded as exc:  # before the loop started (it catches its own)
            return UnitResult(Status.partial, str(exc), usage=spent.to_dict())  # "budget reached: ..."
        except Exception as exc:  # noqa: BLE001  (a graph that cannot compile or run is a recorded failure)
            if is_bug(exc):
                raise InternalError(
                    f"a bug in graphopt stopped the evaluation of {unit.candidate_id}: {type(exc).__name__}: {exc}"[:400],
                    "".join(traceback.format_exception(exc)),
                ) from exc
            first = str(exc).splitlines()[0] if str(exc) else ""
            return UnitResult(Status.failed, f"{type(exc).__name__}: {first}"[:500], usage=spent.to_dict())
    data = result.to_dict()
    failures = spent.total().failures
    out = UnitResult(Status.done, result=data, usage=spent.to_dict(), traces=result.traces, errors=result.errors, failures=failures)
    if failures or result.errors:
        out.status = Status.failed
        first = f" (first program error: {result.first_error[:300]})" if result.first_error else ""
        out.reason = f"{max(failures, result.errors)} model calls failed at the provider after retries{first}"
    elif result.stopped == "budget":
        out.status = Status.partial
        out.reason = result.stop_reason  # the BudgetExceeded message: "budget reached: ..."
    return out


def merged_usage(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any]:
    """Two units' usage (`Ledger.to_dict()`) as one."""
    total = Ledger.from_dict(first or {})
    for key, usage in Ledger.from_dict(second or {}).rows.items():
        total.record(*key, usage)
    return total.to_dict()


def work_tokens(usage: dict[str, Any]) -> float:
    """Tokens of every call a usage (`Ledger.to_dict()`) holds, cache hits and joined calls included."""
    levels = usage.get("levels", {})
    return float(sum(u.get("tokens", 0) + u.get("cached_tokens", 0) for u in levels.values()))
