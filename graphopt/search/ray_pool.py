"""A pool of Ray workers that run one kind of job: the seam the search's units and a study's cells share.

`RayPool(job)` starts or joins a cluster and runs `job(*args)` as a Ray task (one CPU each, at
most `parallel` in flight). A job runs its coroutine on the worker's one event loop
(`on_worker_loop`), so clients a worker keeps between jobs keep their connections; a fatal
provider error comes back as data and is raised again on the driver, so the command stops with
its one-line message.

Example:
    >>> pool = RayPool(my_job, address="auto")  # doctest: +SKIP
    >>> result = await pool.call(arg1, arg2)  # doctest: +SKIP
"""

from __future__ import annotations

__all__ = ["RayPool", "import_ray", "on_worker_loop", "worker_config", "ray_available"]

import asyncio
import hashlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ..errors import ConfigError, LLMError
from ..lm import LMConfig
from .executor import InFlight

_LOOP: asyncio.AbstractEventLoop | None = None
_LOOP_LOCK = threading.Lock()


def ray_available() -> bool:
    """True when Ray can be imported."""
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def import_ray() -> Any:
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


def on_worker_loop(coro: Coroutine[Any, Any, Any]) -> Any:
    """Runs `coro` on the worker's loop; a fatal provider error is returned as `{"fatal": ...}`."""
    try:
        return asyncio.run_coroutine_threadsafe(coro, _worker_loop()).result()
    except LLMError as exc:
        if not getattr(exc, "fatal", False):
            raise
        return {"fatal": {
            "reason": exc.reason, "provider": exc.provider, "model": exc.model, "status": exc.status,
            "retryable": exc.retryable, "retry_after": exc.retry_after,
        }}


def settings_key(config: LMConfig, *more: Any) -> str:
    """What a worker keys its clients by: the settings, and how the transport is made."""
    from ray import cloudpickle

    return "|".join([config.model_dump_json(), *(hashlib.sha256(cloudpickle.dumps(m)).hexdigest() for m in more if m is not None)])


def worker_config(config: LMConfig) -> LMConfig:
    """The settings a worker gets: one embedded-model instance unless the settings chose a number.

    A worker runs one job at a time on the one CPU its Ray task claims; a pool sized by the
    machine's cores in every worker would load the model many times over on the same cores.
    """
    if config.local.instances is not None:
        return config
    return config.model_copy(update={"local": config.local.model_copy(update={"instances": 1})})


class RayPool(InFlight):
    """Runs `job` as Ray tasks on a local or remote cluster.

    Args:
        job: a picklable function run on a worker with the arguments of `call`.
        address: None starts a local cluster (`num_cpus` worker slots), "auto" joins the one on
            this machine, "ray://HOST:PORT" a remote one. Ignored when Ray is already initialised.
        parallel: jobs in flight (default: the cluster's CPUs, each job takes one).
        num_cpus: CPUs for a cluster this pool starts (default: all of the machine's).
        max_retries: times Ray runs a job again after its worker process died.

    Raises:
        ConfigError: Ray is not installed, the cluster cannot be reached, or `parallel` < 1.
    """

    def __init__(self, job: Callable[..., Any], *, address: str | None = None, parallel: int | None = None,
                 num_cpus: int | None = None, max_retries: int = 2):
        ray = import_ray()
        if parallel is not None and parallel < 1:
            raise ConfigError(f"--parallel must be at least 1, got {parallel}")
        self.ray, self._started = ray, False
        if not ray.is_initialized():
            try:
                ray.init(address=address, num_cpus=num_cpus if address is None else None,
                         include_dashboard=False, log_to_driver=False, configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise ConfigError(
                    f"cannot reach the Ray cluster at {address or 'a local cluster'} ({str(exc).splitlines()[0][:160]}):"
                    " start one with `ray start --head`, or drop --ray-address to start a local one"
                ) from None
            self._started = True
        self.parallel = parallel or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._remote = ray.remote(job).options(num_cpus=1, max_retries=max_retries, retry_exceptions=False)

    async def call(self, *args: Any) -> Any:
        """The job's result on a worker.

        Raises:
            LLMError: a fatal provider error on the worker (bad key, unknown model).
            ray.exceptions.RayError: the worker was lost after its retries.
        """
        async with self.slot():
            out = await self._remote.remote(*args)
        if isinstance(out, dict) and "fatal" in out:
            raise LLMError(**out["fatal"])
        return out

    def close(self) -> None:
        """Shuts down the local cluster this pool started (a joined one keeps running)."""
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
        self._started = False
