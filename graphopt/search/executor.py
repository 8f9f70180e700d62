"""Executors run evaluation units; the search engine only submits units and awaits results.

`LocalExecutor` runs them as asyncio tasks in this process, at most `parallel` at a time (the
LM client still bounds the concurrency of each model). Another executor (a Ray pool, say) only
has to implement `run`: the engine, its phases and the store never see how a unit was run.
"""

from __future__ import annotations

__all__ = ["Executor", "LocalExecutor", "default_parallel"]

import asyncio
import weakref
from abc import ABC, abstractmethod

from ..errors import ConfigError
from ..lm import LEVELS, LM
from ..tasks.base import Task
from .unit import EvalUnit, UnitResult, run_unit


class Executor(ABC):
    """Runs evaluation units. Implementations must not write the run store."""

    name = "custom"

    @abstractmethod
    async def run(self, unit: EvalUnit) -> UnitResult:
        """Runs one unit and returns its result (a fatal provider error may propagate)."""

    def close(self) -> None:
        """Releases what the executor holds (no-op by default)."""


def default_parallel(lm: LM) -> int:
    """Evaluations in flight by default: 4 for API models, 1 when a level runs the in-process model.

    The embedded model serves one request at a time per instance; interleaving the calls of
    several programs on it only evicts each program's prompt prefix from llama.cpp's cache, so
    evaluations then run one after another (each still sends its examples together).
    """
    local = any(lm.model(level).startswith("local/") for level in LEVELS)
    if not local:
        return 4
    return max(1, int(getattr(lm.transport, "instances", 1) or 1))


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
        # One semaphore per event loop: a semaphore belongs to the loop it was first used in.
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()

    def _slot(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._slots.get(loop)
        if sem is None:
            sem = self._slots[loop] = asyncio.Semaphore(self.parallel)
        return sem

    async def run(self, unit: EvalUnit) -> UnitResult:
        async with self._slot():
            return await run_unit(unit, self.task, self.lm)

    def __repr__(self) -> str:
        return f"LocalExecutor(parallel={self.parallel})"
