"""Runs evaluation units as Ray tasks, on a local cluster or a remote one (`pip install 'graphopt[ray]'`).

The driver ships each unit with the run's model settings (`LMConfig`: model names, endpoints and
the *names* of key variables, never a key), its budget and the spend so far; the worker builds
its own client from them (keys come from the worker's environment), runs `run_unit` and returns
the `UnitResult`. The driver records the unit's usage in its own ledger and, as with the local
executor, alone writes the store.

Each worker process keeps one client per settings (so the embedded model is loaded once per
worker process) and one event loop in a background thread. A worker that dies loses only its
unit: Ray runs it again (`max_retries`), and a unit whose retries are spent comes back failed
with the reason, which the search records like any failed evaluation.

Example:
    >>> executor = RayExecutor(task, lm, address="auto")  # doctest: +SKIP
    >>> await run_search(task, lm, budget, out, seeds, executor=executor)  # doctest: +SKIP
"""

from __future__ import annotations

__all__ = ["RayExecutor", "ray_available", "worker_config"]

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from ..errors import ConfigError, LLMError
from ..lm import LM, Budget, Ledger, LMConfig
from ..lm.ledger import Usage
from ..tasks.base import Task
from ..status import Status
from .executor import Executor
from .unit import EvalUnit, UnitResult, run_unit

# What a worker keeps between units: clients by settings, and the loop they run on.
_CLIENTS: dict[str, LM] = {}
_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def ray_available() -> bool:
    """True when Ray can be imported."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'graphopt[ray]'") from None
    return ray


def _worker_loop() -> asyncio.AbstractEventLoop:
    """One event loop per worker process, in a daemon thread, so clients keep their connections."""
    global _LOOP
    with _LOOP_LOCK:
        if _LOOP is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="graphopt-worker-loop", daemon=True).start()
            _LOOP = loop
        return _LOOP


def _client(config: LMConfig, budget: Budget, transport_factory: Callable[[], Any] | None) -> LM:
    """The worker's client for these settings: made on the first unit, reused by the next ones."""
    import hashlib

    from ray import cloudpickle

    made_by = hashlib.sha256(cloudpickle.dumps(transport_factory)).hexdigest() if transport_factory else ""
    key = f"{config.model_dump_json()}|{budget.model_dump_json()}|{made_by}"
    lm = _CLIENTS.get(key)
    if lm is None:
        transport = transport_factory() if transport_factory is not None else None
        lm = _CLIENTS[key] = LM(config, transport=transport, budget=budget)
    return lm


def worker_config(config: LMConfig) -> LMConfig:
    """The settings a worker gets: one embedded-model instance unless the settings chose a number.

    A worker runs one unit at a time on the one CPU its Ray task claims; a pool sized by the
    machine's cores in every worker would load the model many times over on the same cores.
    """
    if config.local.instances is not None:
        return config
    return config.model_copy(update={"local": config.local.model_copy(update={"instances": 1})})


def _fatal_payload(exc: LLMError) -> dict[str, Any]:
    return {
        "reason": exc.reason, "provider": exc.provider, "model": exc.model, "status": exc.status,
        "retryable": exc.retryable, "retry_after": exc.retry_after,
    }


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
    future = asyncio.run_coroutine_threadsafe(run_unit(unit, task, lm), _worker_loop())
    try:
        return future.result()
    except LLMError as exc:  # fatal: the driver raises it again and the command stops
        return {"fatal": _fatal_payload(exc)}


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
        ray = _import_ray()
        if parallel is not None and parallel < 1:
            raise ConfigError(f"--parallel must be at least 1, got {parallel}")
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, num_cpus=num_cpus if address is None else None,
                         include_dashboard=False, log_to_driver=False, configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = address or "a local cluster"
                raise ConfigError(
                    f"cannot reach the Ray cluster at {where} ({str(exc).splitlines()[0][:160]}):"
                    " start one with `ray start --head`, or drop --ray-address to start a local one"
                ) from None
            self._started = True
        self.task, self.lm = task, lm
        self.parallel = parallel or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.transport_factory = transport_factory
        self._config = worker_config(lm.config)
        self._task_ref = ray.put(task)
        self._remote = ray.remote(_run_on_worker).options(num_cpus=1, max_retries=max_retries, retry_exceptions=False)


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
        async with self.slot():
            ref = self._remote.remote(unit, self._task_ref, self._config, self.lm.budget, self._spent_so_far(), self.transport_factory)
            try:
                out = await ref
            except self._ray.exceptions.RayError as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:300]
                return UnitResult(Status.failed, f"Ray worker lost the evaluation after its retries: {type(exc).__name__}: {first}")
        if isinstance(out, dict):
            raise LLMError(**out["fatal"])
        for (level, model), usage in Ledger.from_dict(out.usage).rows.items():
            self.lm.ledger.record(level, model, usage)
        return out

    def close(self) -> None:
        """Shuts down the local cluster this executor started (a joined one keeps running)."""
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()
        self._started = False

    def __repr__(self) -> str:
        return f"RayExecutor(parallel={self.parallel})"
