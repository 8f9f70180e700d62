"""Throughput of the embedded model: graphopt's pool against raw llama-cpp-python, in one run.

Runs the seed program of word_sorting on 48 examples (temperature 0, the task's answer length
and stop strings), each way on fresh instances, and prints prompts per second:

- raw single: one `llama_cpp.Llama` with one thread, calls one after another (graphopt's
  default before the pool);
- raw pool: as many one-thread `Llama` instances as graphopt's pool has, one Python thread
  each, pulling the same prompts from a queue (what the pool is built on);
- graphopt: `graphopt.program.evaluate()` with the default settings (the pool), cache off.

Then the ratios graphopt / raw single (target >= 1.5) and graphopt / raw pool (target >= 0.9),
the load average before and after, and the instance count. `--background N` adds N busy
processes on the machine for the whole measurement (the "under load" case; they stop by
themselves). Exits non-zero only on errors, never on a missed target.

Usage: `python benchmarks/local_throughput.py [--examples 48] [--instances N] [--background N] [--json]`.
"""

from __future__ import annotations

__all__ = ["main"]

import argparse
import asyncio
import json
import multiprocessing
import os
import queue
import threading
import time
from typing import Any

TARGET_VS_SINGLE = 1.5
TARGET_VS_POOL = 0.9


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def _raw_kwargs(task: Any, messages: list[dict]) -> dict[str, Any]:
    # What graphopt sends for the program level at temperature 0 (see graphopt.lm.local).
    kwargs: dict[str, Any] = {"messages": messages, "temperature": 0.0, "top_k": 1, "max_tokens": task.max_tokens or 256}
    if task.stop:
        kwargs["stop"] = task.stop
    return kwargs


def _new_llama(path: str) -> Any:
    from llama_cpp import Llama

    return Llama(model_path=path, n_ctx=2048, n_threads=1, n_threads_batch=1, seed=0, verbose=False)


def raw_pool(path: str, prompts: list[list[dict]], task: Any, instances: int) -> float:
    """Seconds for raw llama-cpp-python on `instances` one-thread instances (loading excluded)."""
    llamas = [_new_llama(path) for _ in range(instances)]
    work: queue.Queue = queue.Queue()
    for messages in prompts:
        work.put(messages)

    def worker(llama: Any) -> None:
        while True:
            try:
                messages = work.get_nowait()
            except queue.Empty:
                return
            llama.set_seed(0)
            llama.create_chat_completion(**_raw_kwargs(task, messages))

    threads = [threading.Thread(target=worker, args=(llama,)) for llama in llamas]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    for llama in llamas:
        llama.close()
    return elapsed


def graphopt_run(task: Any, examples: list, instances: int | None) -> tuple[float, int, float]:
    """Seconds for graphopt's evaluate() (instances loaded first), the pool size, and the accuracy."""
    from graphopt.lm import LM, LMConfig
    from graphopt.lm.config import LocalConfig
    from graphopt.lm.local import LocalModels, resolve_model_path
    from graphopt.program import evaluate

    config = LMConfig(local=LocalConfig(instances=instances), cache_dir=None)
    lm = LM(config, cache_dir=None)
    pool = LocalModels.pool(resolve_model_path("smollm2"), config.local)
    pool.fill()  # loaded before timing, as the raw runs' instances are
    started = time.perf_counter()
    result = asyncio.run(evaluate(task.seed_program, examples, task, lm))
    elapsed = time.perf_counter() - started
    size = pool.loaded
    lm.close()
    LocalModels.close_all()
    return elapsed, size, result.accuracy


def run(examples_count: int, instances: int | None) -> dict[str, Any]:
    from graphopt.lm.local import smollm2_path
    from graphopt.tasks import get_task

    task = get_task("word_sorting")
    examples = (task.train + task.val + task.test)[:examples_count]
    prompts = [task.seed_program.messages(ex.input) for ex in examples]
    path = str(smollm2_path())
    load_before = os.getloadavg()
    graphopt_s, pool_size, accuracy = graphopt_run(task, examples, instances)
    single_s = raw_pool(path, prompts, task, 1)
    pool_s = raw_pool(path, prompts, task, pool_size)
    load_after = os.getloadavg()
    n = len(prompts)
    rates = {"raw_single": n / single_s, "raw_pool": n / pool_s, "graphopt": n / graphopt_s}
    return {
        "examples": n,
        "instances": pool_size,
        "cores": os.cpu_count(),
        "prompts_per_s": rates,
        "graphopt_vs_raw_single": rates["graphopt"] / rates["raw_single"],
        "graphopt_vs_raw_pool": rates["graphopt"] / rates["raw_pool"],
        "accuracy": accuracy,
        "load_before": load_before,
        "load_after": load_after,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=48)
    parser.add_argument("--instances", type=int, default=None, help="pool size (default: graphopt's sizing)")
    parser.add_argument("--background", type=int, default=0, help="busy processes to run alongside")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    busy = [multiprocessing.Process(target=_busy, args=(600.0,), daemon=True) for _ in range(args.background)]
    for process in busy:
        process.start()
    try:
        figures = run(args.examples, args.instances)
    finally:
        for process in busy:
            process.terminate()
            process.join()
    figures["background_processes"] = args.background
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    rates = figures["prompts_per_s"]
    print(f"word_sorting seed program, {figures['examples']} examples, {figures['cores']} cores, "
          f"{args.background} busy background processes")
    print(f"load average before {figures['load_before'][0]:.2f}, after {figures['load_after'][0]:.2f}")
    print(f"raw llama-cpp-python, 1 instance x 1 thread:          {rates['raw_single']:.2f} prompts/s")
    print(f"raw llama-cpp-python, {figures['instances']} instances x 1 thread:         {rates['raw_pool']:.2f} prompts/s")
    print(f"graphopt evaluate(), pool of {figures['instances']} (accuracy {figures['accuracy']:.3f}): {rates['graphopt']:.2f} prompts/s")
    vs_single, vs_pool = figures["graphopt_vs_raw_single"], figures["graphopt_vs_raw_pool"]
    print(f"graphopt / raw single: {vs_single:.2f}x (target >= {TARGET_VS_SINGLE}x) {'met' if vs_single >= TARGET_VS_SINGLE else 'MISSED'}")
    print(f"graphopt / raw pool:   {vs_pool:.2f}x (target >= {TARGET_VS_POOL}x) {'met' if vs_pool >= TARGET_VS_POOL else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
