"""Throughput of the embedded model: graphopt's pool against raw llama-cpp-python, in one run.

Runs the seed program of word_sorting on 48 examples (temperature 0, the task's answer length
and stop strings) three ways, in slices with the order rotated so that a change in the machine's
load falls on all three alike, and prints prompts per second and CPU seconds per prompt:

- raw single: one `llama_cpp.Llama` with one thread, calls one after another (graphopt's
  default before the pool);
- raw pool: as many one-thread `Llama` instances as graphopt's pool has, one Python thread
  each, pulling the same prompts from a queue (what the pool is built on);
- graphopt: `graphopt.program.evaluate()` with the default settings (the pool), cache off.

Then the ratios graphopt / raw single (target >= 1.5) and graphopt / raw pool (target >= 0.9),
the load average before and after, and the instance count. `--background N` adds N busy
processes on the machine for the whole measurement (the "under load" case; they stop by
themselves). Exits 1 when a target is missed (with --json too), non-zero on errors.

Usage: `python benchmarks/local_throughput.py [--examples 48] [--instances N] [--rounds 3] [--background N] [--json]`.
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


class RawPool:
    """Raw llama-cpp-python: `size` one-thread instances, one Python thread each, on a shared queue."""

    def __init__(self, path: str, size: int):
        self.llamas = [_new_llama(path) for _ in range(size)]

    def run(self, prompts: list[list[dict]], task: Any) -> None:
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

        threads = [threading.Thread(target=worker, args=(llama,)) for llama in self.llamas]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def close(self) -> None:
        for llama in self.llamas:
            llama.close()


class Graphopt:
    """graphopt's evaluate() on the default pool (every instance loaded before timing), cache off."""

    def __init__(self, instances: int | None):
        from graphopt.lm import LM, LMConfig
        from graphopt.lm.config import LocalConfig
        from graphopt.lm.local import LocalModels, resolve_model_path

        config = LMConfig(local=LocalConfig(instances=instances), cache_dir=None)
        self.lm = LM(config, cache_dir=None)
        self.pool = LocalModels.pool(resolve_model_path("smollm2"), config.local)
        self.pool.fill()
        self.scores: list[float] = []

    def run(self, examples: list, task: Any) -> None:
        from graphopt.program import evaluate

        self.scores += asyncio.run(evaluate(task.seed_program, examples, task, self.lm)).scores

    def close(self) -> None:
        from graphopt.lm.local import LocalModels

        self.lm.close()
        LocalModels.close_all()


def run(examples_count: int, instances: int | None, rounds: int) -> dict[str, Any]:
    """Each way on the same examples, in `rounds` slices with the order rotated, so that a change
    in the machine's load falls on all three alike; wall and CPU seconds are summed per way."""
    from graphopt.lm.local import smollm2_path
    from graphopt.tasks import get_task

    task = get_task("word_sorting")
    examples = (task.train + task.val + task.test)[:examples_count]
    path = str(smollm2_path())
    load_before = os.getloadavg()
    ours = Graphopt(instances)
    size = ours.pool.size
    single, pool = RawPool(path, 1), RawPool(path, size)
    ways = {
        "raw_single": lambda chunk: single.run([task.seed_program.messages(ex.input) for ex in chunk], task),
        "raw_pool": lambda chunk: pool.run([task.seed_program.messages(ex.input) for ex in chunk], task),
        "graphopt": lambda chunk: ours.run(chunk, task),
    }
    wall = dict.fromkeys(ways, 0.0)
    cpu = dict.fromkeys(ways, 0.0)
    names = list(ways)
    per_round = -(-len(examples) // rounds)
    for r in range(rounds):
        chunk = examples[r * per_round : (r + 1) * per_round]
        for name in names[r % 3 :] + names[: r % 3]:
            started, cpu_started = time.perf_counter(), time.process_time()
            ways[name](chunk)
            wall[name] += time.perf_counter() - started
            cpu[name] += time.process_time() - cpu_started
    load_after = os.getloadavg()
    accuracy = sum(ours.scores) / max(len(ours.scores), 1)
    for way in (ours, single, pool):
        way.close()
    n = len(examples)
    rates = {name: n / wall[name] for name in ways}
    return {
        "examples": n,
        "instances": size,
        "cores": os.cpu_count(),
        "rounds": rounds,
        "prompts_per_s": rates,
        "cpu_s_per_prompt": {name: cpu[name] / n for name in ways},
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
    parser.add_argument("--rounds", type=int, default=3, help="slices of the examples, the order of the ways rotated")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    busy = [multiprocessing.Process(target=_busy, args=(600.0,), daemon=True) for _ in range(args.background)]
    for process in busy:
        process.start()
    try:
        figures = run(args.examples, args.instances, args.rounds)
    finally:
        for process in busy:
            process.terminate()
            process.join()
    figures["background_processes"] = args.background
    met = (figures["graphopt_vs_raw_single"] >= TARGET_VS_SINGLE, figures["graphopt_vs_raw_pool"] >= TARGET_VS_POOL)
    if args.json:
        print(json.dumps({**figures, "targets_met": all(met)}, indent=2))
        return 0 if all(met) else 1
    rates = figures["prompts_per_s"]
    print(f"word_sorting seed program, {figures['examples']} examples, {figures['cores']} cores, "
          f"{args.background} busy background processes")
    print(f"load average before {figures['load_before'][0]:.2f}, after {figures['load_after'][0]:.2f}")
    print(f"raw llama-cpp-python, 1 instance x 1 thread:          {rates['raw_single']:.2f} prompts/s")
    print(f"raw llama-cpp-python, {figures['instances']} instances x 1 thread:         {rates['raw_pool']:.2f} prompts/s")
    print(f"graphopt evaluate(), pool of {figures['instances']} (accuracy {figures['accuracy']:.3f}): {rates['graphopt']:.2f} prompts/s")
    cpu = figures["cpu_s_per_prompt"]
    print(f"CPU s per prompt: raw single {cpu['raw_single']:.3f}, raw pool {cpu['raw_pool']:.3f}, graphopt {cpu['graphopt']:.3f}")
    vs_single, vs_pool = figures["graphopt_vs_raw_single"], figures["graphopt_vs_raw_pool"]
    print(f"graphopt / raw single: {vs_single:.2f}x (target >= {TARGET_VS_SINGLE}x) {'met' if vs_single >= TARGET_VS_SINGLE else 'MISSED'}")
    print(f"graphopt / raw pool:   {vs_pool:.2f}x (target >= {TARGET_VS_POOL}x) {'met' if vs_pool >= TARGET_VS_POOL else 'MISSED'}")
    return 0 if all(met) else 1


if __name__ == "__main__":
    raise SystemExit(main())
