"""Runs evaluation units as Ray tasks, on a local cluster or a remote one (`pip install 'graphopt[ray]'`).

The driver ships each unit with the run's model settings (`LMConfig`: model names, endpoints and
the *names* of key variables, never a key), its budget and the spend so far; the worker builds
its own client from them (keys come from the worker's environment), runs `run_unit` and returns
the `UnitResult`. The driver records the unit's usage in its own ledger and, as with the local
executor, alone writes the store.

Each worker process keeps one client per settings (so the embedded model is loaded once per
worker process); the cluster, the worker's event loop and fatal errors are `ray_pool.RayPool`'s,
shared with a study's cells. A worker that dies loses only its
unit: Ray runs it again (`max_retries`), and a unit whose retries are spent comes back failed
with the reason, which the search records like any failed evaluation.

Example:
    >>> executor = RayExecutor(task, lm, address="auto")  # doctest: +SKIP
    >>> await run_search(task, lm, budget, out, seeds, executor=executor)  # doctest: +SKIP
"""

from __future__ import annotations

__all__ = ["RayExecutor", "ray_available", "worker_config"]

from collections.abc import Callable
from typing import Any

from ..lm import LM, Budget, Ledger, LMConfig
from ..lm.ledger import Usage
from ..status import Status
from ..tasks.base import Task
from .executor import Executor
from .ray_pool import RayPool, on_worker_loop, ray_available, settings_key, worker_config
from .unit import EvalUnit, UnitResult, run_unit

# What a worker keeps between units: clients by settings.
_CLIENTS: dict[str, LM] = {}


def _client(config: LMConfig, budget: Budget, transport_factory: Callable[[], Any] | None) -> LM:
    """The worker's client for these settings: made on the first unit, reused by the next ones."""
    key = settings_key(config, budget.model_dump_json(), transport_factory)
    lm = _CLIENTS.get(key)
    if lm is None:
        transport = transport_factory() if transport_factory is not None else None
        lm = _CLIENTS[key] = LM(config, transport=transport, budget=budget)
    return lm


def _run_on_worker(
    unit: EvalUnit,
    task: Task,
    config: LMConfig,
    budget: Budget,
    carried: dict[str, Any],
    transport_factory: Callable[[], Any] | None,
) -> UnitResult | dict[str, Any]:
    """The Ray task: runs one unit with the worker's client; a fatal provider error comes back as data."""
    lm = _client(config, budget, transport_factory)
    lm.ledger = Ledger()  # this unit's spend only: the driver's spend so far arrives as `carried`
    lm.carried = Ledger.from_dict(carried)
    return on_worker_loop(run_unit(unit, task, lm))


class RayExecutor(Executor):
    """Runs units as Ray tasks; at most `parallel` in flight.

    Args:
        task: the task every unit is scored on (put in Ray's object store once).
        lm: the driver's client: its settings and budget go to the workers, and the units'
            usage is recorded in its ledger.
        address: the cluster: None starts a local one (`num_cpus` worker slots), "auto" joins the
            one on this machine, "ray://HOST:PORT" a remote one. Ignored when Ray is already
            initialised in this process.
        parallel: units in flight (default: the cluster's CPUs, each unit takes one).
        num_cpus: CPUs for a cluster this executor starts (default: all of the machine's).
        transport_factory: a picklable callable that builds a worker's transport (tests ship a
            scripted model this way); default: the settings' own (litellm, the embedded model).
        max_retries: times Ray runs a unit again after its worker process died.

    Raises:
        ConfigError: Ray is not installed, or the cluster cannot be reached.
    """

    name = "ray"

    def __init__(
        self,
        task: Task,
        lm: LM,
        *,
        address: str | None = None,
        parallel: int | None = None,
        num_cpus: int | None = None,
        transport_factory: Callable[[], Any] | None = None,
        max_retries: int = 2,
    ):
        self.pool = RayPool(_run_on_worker, address=address, parallel=parallel, num_cpus=num_cpus, max_retries=max_retries)
        self.task, self.lm, self.parallel = task, lm, self.pool.parallel
        self.transport_factory = transport_factory
        self._config = worker_config(lm.config)
        self._task_ref = self.pool.ray.put(task)

    def _spent_so_far(self) -> dict[str, Any]:
        total = self.lm.carried.snapshot()
        for key, usage in self.lm.ledger.snapshot().rows.items():
            total.rows.setdefault(key, Usage()).add(usage)
        return total.to_dict()

    async def run(self, unit: EvalUnit) -> UnitResult:
        """Runs the unit on a worker and records its usage in the driver's ledger.

        Raises:
            LLMError: a fatal provider error on the worker (bad key, unknown model).
        """
        try:
            out = await self.pool.call(unit, self._task_ref, self._config, self.lm.budget, self._spent_so_far(), self.transport_factory)
        except self.pool.ray.exceptions.RayError as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
            return UnitResult(Status.failed, f"Ray worker lost the evaluation after its retries: {type(exc).__name__}: {first}")
        for (level, model), usage in Ledger.from_dict(out.usage).rows.items():
            self.lm.ledger.record(level, model, usage)
        return out

    def close(self) -> None:
        """Shuts down the local cluster this executor started (a joined one keeps running)."""
        self.pool.close()

    def __repr__(self) -> str:
        return f"RayExecutor(parallel={self.parallel})"
