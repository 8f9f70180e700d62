"""A pool of llama.cpp instances of one GGUF file, serving calls in parallel.

A `Llama` object serves one call at a time, and one llama.cpp thread per core spins at barriers
whenever anything else runs (measured on 2 busy cores: 64 tokens in ~1-3 s with 1 thread, 3-35 s
with 2). So the pool runs several one-thread instances side by side, as many as the cores and the
free memory allow (the weights are memory-mapped, shared by the instances of a process; each
instance adds its KV cache and buffers).

Each call goes to the free instance whose previous prompt shares the longest prefix with it:
llama.cpp reuses the KV cache of that prefix, so a program evaluated on many examples keeps its
instruction and demos warm on the instances it runs on, while no instance sits idle when there
is work. Instances are loaded on demand, up to the pool's size.
"""

from __future__ import annotations

__all__ = ["LocalPool", "pool_size", "memory_available", "model_bytes"]

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Per instance beyond the shared weights: the KV cache at n_ctx 4096 (~100 MB for SmolLM2-135M),
# compute buffers and llama-cpp-python's own arrays, rounded up.
_INSTANCE_OVERHEAD = 256 * 2**20


def memory_available() -> int | None:
    """Bytes of memory available now (Linux MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def pool_size(model_bytes: int, threads: int = 1, *, cores: int | None = None, memory: int | None = None) -> int:
    """How many instances fit: one per `threads` cores, within half the available memory."""
    cores = _cores() if cores is None else cores
    by_cores = max(1, cores // max(1, threads))
    memory = memory_available() if memory is None else memory
    if memory is None:
        return by_cores
    by_memory = max(1, (memory // 2 - model_bytes) // (model_bytes // 4 + _INSTANCE_OVERHEAD))
    return int(max(1, min(by_cores, by_memory)))


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    low, high = 0, n  # binary search on the first difference: prompts are kilobytes
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


class _Instance:
    def __init__(self, llama: Any):
        self.llama = llama
        self.last_prompt = ""


class LocalPool:
    """Instances of one model file; `run` lends the best free one to a function.

    Args:
        load: makes one llama.cpp instance (called at most `size` times, on demand).
        size: the most instances the pool holds; `resize` can raise it later.
    """

    def __init__(self, load: Callable[[], Any], size: int):
        self._load = load
        self.size = max(1, size)
        self._free: list[_Instance] = []
        self._all: list[_Instance] = []
        self._loading = 0
        self._cond = threading.Condition()

    @property
    def loaded(self) -> int:
        return len(self._all)

    def resize(self, size: int) -> None:
        with self._cond:
            self.size = max(self.size, size)
            self._cond.notify_all()

    def _acquire(self, prompt: str) -> _Instance:
        with self._cond:
            while True:
                if self._free:
                    best = max(self._free, key=lambda inst: _common_prefix(inst.last_prompt, prompt))
                    # An idle instance with nothing in common is as good as a new one: no need to load.
                    self._free.remove(best)
                    return best
                if len(self._all) + self._loading < self.size:
                    self._loading += 1
                    break
                self._cond.wait()
        try:
            instance = _Instance(self._load())
        except BaseException:
            with self._cond:
                self._loading -= 1
                self._cond.notify_all()
            raise
        with self._cond:
            self._loading -= 1
            self._all.append(instance)
        return instance

    def _release(self, instance: _Instance, prompt: str) -> None:
        with self._cond:
            instance.last_prompt = prompt
            self._free.append(instance)
            self._cond.notify()

    def run(self, prompt: str, fn: Callable[[Any], Any]) -> Any:
        """Calls `fn(llama)` on a free instance (blocking until one is free); returns its result.

        Args:
            prompt: the call's prompt text, to pick the instance with the longest cached prefix.
            fn: what to do with the instance; it has the instance to itself until it returns.
        """
        instance = self._acquire(prompt)
        try:
            return fn(instance.llama)
        finally:
            self._release(instance, prompt)

    def fill(self) -> None:
        """Loads every instance not loaded yet (e.g. before timing, or before output starts)."""
        while True:
            with self._cond:
                if len(self._all) + self._loading >= self.size:
                    return
                self._loading += 1
            try:
                instance = _Instance(self._load())
            finally:
                with self._cond:
                    self._loading -= 1
            with self._cond:
                self._all.append(instance)
                self._free.append(instance)
                self._cond.notify()

    def close(self) -> None:
        """Closes every instance (waits for the ones in use)."""
        with self._cond:
            while len(self._free) < len(self._all) or self._loading:
                self._cond.wait()
            for instance in self._all:
                close = getattr(instance.llama, "close", None)
                if close is not None:
                    close()
            self._all.clear()
            self._free.clear()


def model_bytes(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
