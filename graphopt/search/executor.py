"""Executors run evaluation units; the search engine only submits units and awaits results.

`LocalExecutor` runs them as asyncio tasks in this process, at most `parallel` at a time (the
LM client still bounds the concurrency of each model). Another executor (a Ray pool, say) only
has to implement `run`: the engine, its phases and the store never see how a unit was run.
"""

from __future__ import annotations

__all__ = ["Executor", "InFlight", "LocalExecutor", "default_parallel"]

import asyncio
import os
import weakref
from abc import ABC, abstractmethod

from ..errors import ConfigError
from ..lm import LM, levels_shown
from ..tasks.base import Task
from .unit import EvalUnit, UnitResult, run_unit


class InFlight:
    """A bound on the jobs in flight: `slot()` is a semaphore of `parallel` places for the running
    event loop (units here, a study's cells, a Ray pool's jobs)."""

    parallel = 1

    def slot(self) -> asyncio.Semaphore:
        # One semaphore per event loop: a semaphore belongs to the loop it was first used in.
        slots = self.__dict__.setdefault("_slots", weakref.WeakKeyDictionary())
        loop = asyncio.get_running_loop()
        sem = slots.get(loop)
        if sem is None:
            sem = slots[loop] = asyncio.Semaphore(self.parallel)
        return sem


class Executor(InFlight, ABC):
    """Runs evaluation units. Implementations must not write the run store."""

    name = "custom"

    @abstractmethod
    async def run(self, unit: EvalUnit) -> UnitResult:
        """Runs one unit and returns its result (a fatal provider error may propagate)."""

    def close(self) -> None:
        """Releases what the executor holds (no-op by default)."""


# Evaluations in flight for API models: enough for a round of prompt candidates of every seed
# (the model calls themselves stay bounded by each level's concurrency in the LM client).
API_PARALLEL = 8


def default_parallel(lm: LM) -> int:
    """Evaluations in flight by default: `API_PARALLEL` for API models, one per llama.cpp instance for the embedded one.

    Each instance of the embedded model serves one request at a time and keeps the prompt
    prefix of what it served last (the pool routes a program's calls to the instance holding
    its prefix); more evaluations in flight than instances would only evict those prefixes.
    """
    if not any(lm.model(level).startswith("local/") for level in levels_shown()):  # an unused judge does not count
        return API_PARALLEL
    local = getattr(lm.config, "local", None)
    instances = getattr(local, "instances", None)
    if instances is None:
        threads = getattr(local, "threads", None) or 1
        instances = max(1, (os.cpu_count() or 1) // threads)
    return max(1, int(instances))


class LocalExecutor(Executor):
    """Runs units in this process, at most `parallel` at once.

    Args:
        task: the task every unit is scored on.
        lm: the client the units share (its ledger sees everything; each unit has its own scope).
        parallel: evaluations in flight (>= 1).
    """

    name = "local"

    def __init__(self, task: Task, lm: LM, parallel: int = 1):
        if parallel < 1:
            raise ConfigError(f"--parallel must be at least 1, got {parallel}")
        self.task, self.lm, self.parallel = task, lm, parallel

    async def run(self, unit: EvalUnit) -> UnitResult:
        async with self.slot():
            return await run_unit(unit, self.task, self.lm)

    def __repr__(self) -> str:
        return f"LocalExecutor(parallel={self.parallel})"
