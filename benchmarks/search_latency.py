"""How a search's wall time grows with model latency, against the critical path of its calls.

A fixed small search (four seed graphs, prompt optimization, two generations) runs on the
scripted search model at 0, 0.1 and 0.3 s per call. The slope of wall time against latency is
the number of model-call rounds the search waits through one after another. Three settings:

- sequential: one evaluation in flight (the engine before evaluations became units);
- default: the engine as `graphopt search` runs it with an API model (--parallel API_PARALLEL);
- wide: every independent evaluation at once (--parallel 256), for comparison.

The lower bound is not another run of the engine: it is the critical path of the calls the
default run actually made, each call waiting only on the calls whose output it reads (see
`call_graph.py`: within an evaluation, the calls answered before it was asked for; across
evaluations, its parents'; and any call whose reply text its prompt contains). That many calls
in a row, times the latency, is the least wall time any schedule of the same calls could take.

Every setting gets the same model concurrency (--concurrency, calls in flight per model, the LM
layer's job; default 64, an API tier that does not throttle), so the ratios measure the engine's
scheduling, not the client's queue. The slope is a least-squares fit over the latencies.

Verdict (exit 1 when it fails): the same winner in every run, and the default run's slope at
most 1.3x the wide run's (API_PARALLEL evaluations lose little against 256). The ratio to the
critical path is printed with no target: the gap is the engine's barriers (a generation is
selected from all its scores, which the critical path does not count: it takes only a child's
parents as read) and any scheduling it could still gain.

Run: python benchmarks/search_latency.py [--latencies 0 0.1 0.3] [--concurrency 64] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from call_graph import critical_path, record_calls

from graphopt.graph.io import load_graph
from graphopt.lm import LM, LevelConfig, LMConfig
from graphopt.search.budgets import get_budget
from graphopt.search.executor import API_PARALLEL, LocalExecutor
from graphopt.search.pipeline import run_search
from graphopt.store import RunStore
from graphopt.tasks import get_task
from graphopt.testing import FakeModel
from graphopt.testing.search_model import scripted_search

SEEDS = ("tgd", "tgd_select", "opro", "fewshot")
SETTINGS = {"sequential": 1, "default": API_PARALLEL, "wide": 256}
TARGET_VS_WIDE = 1.3


def _budget():
    return get_budget(
        "small", val_limit=10, test_limit=10, minibatch=4, inner_steps=2, generations=2, children=3,
        prompt_iterations=1, prompt_candidates=2, population=4, seeds=SEEDS,
    )


def _lm(latency: float, concurrency: int) -> LM:
    level = LevelConfig(model="fake/scripted", concurrency=concurrency)
    config = LMConfig(program=level, optimizer=level, meta=level, cache_dir=None)
    return LM(config, transport=FakeModel(fn=scripted_search, latency=latency))


def run_once(latency: float, parallel: int, concurrency: int) -> tuple[float, int, str, int, list[str]]:
    """Wall seconds, model calls, the winner's id and the critical path (in calls) of one search."""
    task = get_task("word_sorting", difficulty="easy", sizes=(16, 10, 10), seed=5)
    lm = _lm(latency, concurrency)
    calls = record_calls(lm)
    graphs = [load_graph(name) for name in SEEDS]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        report = asyncio.run(run_search(
            task, lm, _budget(), Path(tmp) / "run", graphs, executor=LocalExecutor(task, lm, parallel),
        ))
        wall = time.perf_counter() - started
        with RunStore.open(Path(tmp) / "run", read_only=True) as store:
            parents = {c.id: tuple(c.parents) for c in store.candidates()}
    known = "\n".join(f"{ex.input}\n{ex.target}" for split in ("train", "val", "test") for ex in task.split(split))
    return wall, lm.transport.calls, report.best.candidate_id, *critical_path(calls, parents, known)


def _runs_of(places: list[str]) -> list[str]:
    """Places with repeats folded: ["a", "a", "b"] -> ["a x2", "b"]."""
    folded: list[list] = []
    for place in places:
        if folded and folded[-1][0] == place:
            folded[-1][1] += 1
        else:
            folded.append([place, 1])
    return [p if n == 1 else f"{p} x{n}" for p, n in folded]


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
    walls_of: dict[str, list[float]] = {}
    paths: list[int] = []
    for name, parallel in SETTINGS.items():
        walls = []
        for latency in lats:
            runs = [run_once(latency, parallel, args.concurrency) for _ in range(args.repeat)]
            wall, calls, winner, path, _ = min(runs)
            winners.update(r[2] for r in runs)
            if name == "default" and latency > 0:  # at 0 s a call can be answered before its siblings are asked
                paths += [(r[3], r[4]) for r in runs]
            walls.append(wall)
            print(f"  {name:<10} parallel {parallel:>3} latency {latency:.2f}s: {wall:7.2f}s wall, {calls} calls, "
                  f"winner {winner}, critical path {path} calls")
        slopes[name] = _slope(lats, walls)
        walls_of[name] = walls
    path, chain = min(paths)  # the shortest the default runs showed: the bound stays a lower bound
    print()
    print(f"critical path of the default run's calls: {path} calls in a row "
          f"(runs: {sorted({p for p, _ in paths})}); its calls' places:")
    print("  " + " -> ".join(_runs_of(chain)))
    for name, slope in slopes.items():
        print(f"{name:<10} {slope:7.1f} wall s per s of latency  ({slope / path:.2f}x the critical path)")
    for latency, wall in zip(lats, walls_of["default"]):
        if latency > 0:
            print(f"default at {latency:.2f}s: {wall:.2f}s wall against a bound of {path * latency:.2f}s "
                  f"({wall / (path * latency):.2f}x)")
    vs_wide = slopes["default"] / slopes["wide"]
    print(f"default/critical path {slopes['default'] / path:.2f} (no target); "
          f"sequential/default {slopes['sequential'] / slopes['default']:.2f}")
    verdicts = {
        "same winner in every run": len(winners) == 1,
        f"default/wide {vs_wide:.2f} (target <= {TARGET_VS_WIDE})": vs_wide <= TARGET_VS_WIDE,
    }
    for what, ok in verdicts.items():
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
    if not all(verdicts.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
