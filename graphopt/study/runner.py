"""Running a study: every cell not yet done, fanned out on an executor, each result stored as it lands.

The study store (`StudyStore`) is written by this process alone. Grid cells run first, then the
transfer cells (each needs its source search's winner, from the store). A cell that raises is
recorded failed with the reason and the study goes on; `--resume` runs the failed and the
unfinished cells again, never a done one.

Executors: `LocalCells` runs cells as asyncio tasks here (at most `parallel` at once);
`RayCells` runs each cell as a job of the Ray pool the search's units use (`search.ray_pool`),
whose worker builds its own transport from the model settings (keys from the worker's
environment) and keeps it for its next cells.
"""

from __future__ import annotations

__all__ = ["run_study", "check_study", "LocalCells", "RayCells", "StudyProgress"]

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import ConfigError, LLMError
from ..lm import LMConfig
from ..search.executor import InFlight
from ..search.ray_pool import RayPool, on_worker_loop, settings_key, worker_config
from ..status import Status
from .cells import CellJob
from .spec import Cell, StudySpec
from .store import StudyStore

StudyProgress = Callable[[str, dict[str, Any]], None]


class LocalCells(InFlight):
    """Runs cells in this process, sharing one transport (the embedded model loads once).

    Args:
        config: the model settings.
        transport: the shared transport (None: the settings' own, litellm or the embedded model).
        parallel: cells in flight.
    """

    name = "local"

    def __init__(self, config: LMConfig, transport: Any = None, parallel: int = 1):
        if parallel < 1:
            raise ConfigError(f"--parallel must be at least 1, got {parallel}")
        from ..lm import LiteLLMTransport

        self.config, self.parallel = config, parallel
        self.transport = transport if transport is not None else LiteLLMTransport(local=config.local)

    async def run(self, job: CellJob) -> dict[str, Any]:
        async with self.slot():
            return await job.run(self.config, self.transport)

    def close(self) -> None:
        close = getattr(self.transport, "close", None)
        if close is not None:
            close()


_TRANSPORTS: dict[str, Any] = {}


def _cell_on_worker(job: CellJob, config: LMConfig, factory: Callable[[], Any] | None) -> dict[str, Any]:
    """The Ray job of one cell: a transport per settings per worker process."""
    from ..lm import LiteLLMTransport

    key = settings_key(config, factory)
    transport = _TRANSPORTS.get(key)
    if transport is None:
        transport = _TRANSPORTS[key] = factory() if factory is not None else LiteLLMTransport(local=config.local)
    return on_worker_loop(job.run(config, transport))


class RayCells:
    """Runs cells as Ray jobs (one CPU each) on a local or remote cluster (`search.ray_pool`).

    Args:
        config: the model settings (shipped; keys are read on each worker).
        address: None starts a local cluster, "auto" or "ray://HOST:PORT" joins one.
        parallel: cells in flight (default: the cluster's CPUs).
        transport_factory: a picklable callable that builds a worker's transport (tests).
        max_retries: times Ray runs a cell again after its worker process died.
    """

    name = "ray"

    def __init__(self, config: LMConfig, *, address: str | None = None, parallel: int | None = None,
                 num_cpus: int | None = None, transport_factory: Callable[[], Any] | None = None, max_retries: int = 2):
        self.pool = RayPool(_cell_on_worker, address=address, parallel=parallel, num_cpus=num_cpus, max_retries=max_retries)
        self.parallel = self.pool.parallel
        self.config, self.factory = worker_config(config), transport_factory

    async def run(self, job: CellJob) -> dict[str, Any]:
        return await self.pool.call(job, self.config, self.factory)

    def close(self) -> None:
        self.pool.close()


def check_study(study: StudySpec) -> None:
    """Loads every task and graph the study names, so a typo stops it before any cell runs.

    Raises:
        ConfigError, TaskError: an unknown task, task option or graph (one line naming it).
    """
    from ..graph.io import load_graph
    from ..tasks import get_task

    for entry in study.tasks:
        get_task(entry.name, seed=study.seeds[0], **entry.options())
    for method in study.methods:
        if method.kind == "graph":
            load_graph(method.graph or "")
        if method.kind == "search":
            from ..search.budgets import get_budget

            budget = get_budget(method.budget, **{k: tuple(v) if isinstance(v, list) else v for k, v in method.settings.items()})
            for name in budget.seeds:
                load_graph(name)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:500]


async def run_study(
    study: StudySpec,
    store: StudyStore,
    executor: LocalCells | RayCells,
    work_dir: Path,
    *,
    on_event: StudyProgress | None = None,
) -> None:
    """Runs the cells of `study` that the store does not hold as done.

    Raises:
        ConfigError: the store holds this study from another file, or a fatal provider error.
    """
    emit = on_event or (lambda kind, data: None)
    check_study(study)
    cells = study.cells()
    store.start(study.model_dump(mode="json"), [{"key": c.key, "order": i, **asdict(c)} for i, c in enumerate(cells)])
    done = {r.key for r in store.cells() if r.status == Status.done}
    todo = [c for c in cells if c.key not in done]
    emit("start", {"total": len(cells), "done": len(done), "todo": len(todo)})

    async def one(cell: Cell) -> None:
        source_graph = None
        if cell.depends_on is not None:
            source = next((r for r in store.cells() if r.key == cell.depends_on), None)
            if source is None or source.status != Status.done or not (source.result or {}).get("graph"):
                store.fail(cell.key, f"its source search {cell.depends_on} has no winning graph")
                emit("cell", {"key": cell.key, "status": Status.failed, "reason": "source search failed"})
                return
            source_graph = source.result["graph"]
        started = time.monotonic()
        try:
            result = await executor.run(CellJob(cell, study, work_dir, source_graph))
        except LLMError as exc:
            if getattr(exc, "fatal", False):
                raise  # a bad key or an unknown model: every cell would fail alike
            await asyncio.to_thread(store.fail, cell.key, _one_line(exc))
            emit("cell", {"key": cell.key, "status": Status.failed, "reason": _one_line(exc)})
            return
        except Exception as exc:  # noqa: BLE001  (a cell that cannot run is recorded, the study goes on)
            await asyncio.to_thread(store.fail, cell.key, _one_line(exc))
            emit("cell", {"key": cell.key, "status": Status.failed, "reason": _one_line(exc), "seconds": time.monotonic() - started})
            return
        await asyncio.to_thread(store.finish, cell.key, result)
        emit("cell", {"key": cell.key, "status": Status.done, "test": result["test"], "usage": result["usage"], "seconds": time.monotonic() - started})

    grid = [c for c in todo if c.depends_on is None]
    moved = [c for c in todo if c.depends_on is not None]
    await asyncio.gather(*(one(c) for c in grid))
    await asyncio.gather(*(one(c) for c in moved))
    emit("end", {})
