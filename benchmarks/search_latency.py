"""How a search's wall time grows with model latency, against the critical-path bound.

A fixed small search (four seed graphs, prompt optimization, two generations) runs on the
scripted search model at 0, 0.1 and 0.3 s per call. The slope of wall time against latency is
the number of model-call rounds the search waits through one after another. Three settings:

- sequential: one evaluation in flight (the engine before evaluations became units);
- default: the engine as `graphopt search` runs it with an API model (--parallel API_PARALLEL);
- bound: every independent evaluation at once (--parallel 256): the critical path of the
  search's dependencies, measured in the same run.

Every setting gets the same model concurrency (--concurrency, calls in flight per model, the LM
layer's job; default 64, an API tier that does not throttle), so the ratios measure the engine's
scheduling, not the client's queue. The slope is a least-squares fit over the latencies.

Run: python benchmarks/search_latency.py [--latencies 0 0.1 0.3] [--concurrency 64] [--repeat 2]
Prints the slopes (wall seconds per second of latency) and default/bound (target <= 1.3).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from graphopt.graph.io import load_graph
from graphopt.lm import LM, LevelConfig, LMConfig
from graphopt.search.budgets import get_budget
from graphopt.search.executor import API_PARALLEL, LocalExecutor
from graphopt.search.pipeline import run_search
from graphopt.tasks import get_task
from graphopt.testing import FakeModel
from graphopt.testing.search_model import scripted_search

SEEDS = ("tgd", "tgd_select", "opro", "fewshot")
SETTINGS = {"sequential": 1, "default": API_PARALLEL, "bound": 256}


def _budget():
    return get_budget(
        "small", val_limit=10, test_limit=10, minibatch=4, inner_steps=2, generations=2, children=3,
        prompt_iterations=1, prompt_candidates=2, population=4, seeds=SEEDS,
    )


def _lm(latency: float, concurrency: int) -> LM:
    level = LevelConfig(model="fake/scripted", concurrency=concurrency)
    config = LMConfig(program=level, optimizer=level, meta=level, cache_dir=None)
    return LM(config, transport=FakeModel(fn=scripted_search, latency=latency))


def run_once(latency: float, parallel: int, concurrency: int) -> tuple[float, int, str]:
    """Wall seconds, model calls and the winner's id of one search."""
    task = get_task("word_sorting", difficulty="easy", sizes=(16, 10, 10), seed=5)
    lm = _lm(latency, concurrency)
    graphs = [load_graph(name) for name in SEEDS]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        report = asyncio.run(run_search(
            task, lm, _budget(), Path(tmp) / "run", graphs, executor=LocalExecutor(task, lm, parallel),
        ))
        wall = time.perf_counter() - started
    return wall, lm.transport.calls, report.best.candidate_id


def _slope(xs: list[float], ys: list[float]) -> float:
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latencies", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight per model")
    parser.add_argument("--repeat", type=int, default=2, help="runs per point; the fastest counts (CPU noise only adds)")
    args = parser.parse_args()
    lats = sorted(args.latencies)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; latencies {lats}; "
          f"model concurrency {args.concurrency}")
    slopes: dict[str, float] = {}
    winners = set()
    for name, parallel in SETTINGS.items():
        walls = []
        for latency in lats:
            runs = [run_once(latency, parallel, args.concurrency) for _ in range(args.repeat)]
            wall, calls, winner = min(runs)
            winners.update(r[2] for r in runs)
            walls.append(wall)
            print(f"  {name:<10} parallel {parallel:>3} latency {latency:.2f}s: {wall:7.2f}s wall, {calls} calls, winner {winner}")
        slopes[name] = _slope(lats, walls)
    print()
    for name, slope in slopes.items():
        print(f"{name:<10} {slope:7.1f} wall s per s of latency  ({slope / slopes['bound']:.2f}x the bound)")
    print(f"default/bound {slopes['default'] / slopes['bound']:.2f} (target <= 1.3); "
          f"sequential/default {slopes['sequential'] / slopes['default']:.2f}; "
          f"same winner in every run: {len(winners) == 1}")


if __name__ == "__main__":
    main()
