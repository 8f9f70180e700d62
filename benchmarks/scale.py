"""Scaling a study out: the local executor at 1 and 4 cells in flight, and a local Ray cluster.

    python benchmarks/scale.py                 # scripted model, 0.2 s per call, 8 cells
    python benchmarks/scale.py --embedded      # the embedded model: tgd and fewshot, 2 tasks x 2 seeds

Scripted: a study of 8 cells (word_sorting and dyck_languages, zero-shot and tgd, 2 seeds) whose
every model call takes 0.2 s, run (1) on the local executor one cell at a time, (2) with 4 cells
in flight, (3) on a local Ray cluster of 2 worker processes. Each prints its wall time and its
speedup over (1), all measured in this one run; the Ray overhead per cell is the wall time the
cluster adds over the cells' own time (wall x workers - sum of the cells' seconds, per cell: an
upper bound, since it also counts a worker left idle while the last cell finishes elsewhere).
The Ray cluster is started, and its workers warmed (graphopt imported), before the clock starts;
that start is printed on its own.

Embedded: the same shape on the embedded model with the generators' easy settings, 1 local
worker against 2 Ray workers of one llama.cpp thread each. The load average is printed.

Verdict (exit 1 when it fails): every executor gives the first one's test scores, cell for cell;
scripted, 4 cells in flight reach >= 2.5x and 2 Ray workers >= 1.5x (sleep-bound cells: the ideal
is 4x and 2x); embedded, 2 Ray workers are faster than 1 local worker.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import tempfile
import time
from pathlib import Path

from graphopt.study import LocalCells, RayCells, StudySpec, StudyStore, run_study
from graphopt.testing import FakeModel
from graphopt.testing.scripted_study import scripted_config
from graphopt.testing.search_model import scripted_search

LATENCY = 0.2


def scripted_spec() -> StudySpec:
    return StudySpec.model_validate({
        "name": "scale",
        "tasks": [{"name": "word_sorting", "difficulty": "easy", "sizes": [10, 6, 8]},
                  {"name": "dyck_languages", "difficulty": "easy", "sizes": [10, 6, 8]}],
        "methods": [{"name": "zero-shot", "kind": "zero-shot"}, {"name": "tgd", "kind": "graph", "graph": "tgd"}],
        "seeds": [0, 1],
        "loop": {"steps": 2, "minibatch": 2, "val_limit": 4, "test_limit": 8},
    })


def embedded_spec() -> StudySpec:
    return StudySpec.model_validate({
        "name": "scale-embedded",
        "tasks": [{"name": "word_sorting", "difficulty": "easy", "sizes": [12, 10, 20]},
                  {"name": "dyck_languages", "difficulty": "easy", "sizes": [12, 10, 20]}],
        "methods": [{"name": "tgd", "kind": "graph", "graph": "tgd"}, {"name": "fewshot", "kind": "graph", "graph": "fewshot"}],
        "seeds": [0, 1],
        "loop": {"steps": 1, "minibatch": 3, "val_limit": 10, "test_limit": 20},
    })


# The speedup over the first executor each one must beat (see the verdict in the docstring).
MIN_SPEEDUP = {
    "scripted": {"local, 4 in flight": 2.5, "Ray, 2 workers": 1.5},
    "embedded": {"Ray, 2 workers": 1.0},
}


def timed(study: StudySpec, cells, root: Path, name: str) -> tuple[float, list]:
    out = root / name
    with StudyStore.in_dir(out, study.name) as store:
        start = time.perf_counter()
        asyncio.run(run_study(study, store, cells, out))
        wall = time.perf_counter() - start
        records = store.cells()
    bad = [r.key for r in records if r.status != "done"]
    if bad:
        sys.exit(f"{name}: cells not done: {bad[:3]}")
    return wall, records


def warm_imports() -> None:
    """What a cell imports (the inner loop pulls in LangGraph): a one-time cost per process, kept off the clock."""
    import graphopt.loop  # noqa: F401
    import graphopt.search.pipeline  # noqa: F401
    import graphopt.search.ray_executor  # noqa: F401
    import graphopt.study.runner  # noqa: F401


def warm(ray, workers: int) -> None:
    @ray.remote(num_cpus=1)
    def ready() -> int:
        warm_imports()
        return os.getpid()

    ray.get([ready.remote() for _ in range(workers * 2)])


def overhead_ms(wall: float, workers: int, records: list) -> float:
    busy = sum(r.result["seconds"] for r in records)
    return (wall * workers - busy) / len(records) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedded", action="store_true", help="the embedded model instead of the scripted one")
    args = parser.parse_args()
    import ray

    root = Path(tempfile.mkdtemp(prefix="graphopt-scale-"))
    warm_imports()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    if args.embedded:
        from graphopt.lm import LMConfig
        from graphopt.lm.config import LocalConfig

        study = embedded_spec()
        config = LMConfig(local=LocalConfig(instances=1, threads=1), cache_dir=None)
        runs = [("local, 1 worker", lambda: LocalCells(config, None, 1), 1)]
        ray_factory = None
    else:
        study = scripted_spec()
        config = scripted_config()
        runs = [
            ("local, 1 in flight", lambda: LocalCells(config, FakeModel(fn=scripted_search, latency=LATENCY), 1), 1),
            ("local, 4 in flight", lambda: LocalCells(config, FakeModel(fn=scripted_search, latency=LATENCY), 4), 4),
        ]
        ray_factory = functools.partial(FakeModel, fn=scripted_search, latency=LATENCY)
    print(f"study: {len(study.cells())} cells" + ("" if args.embedded else f", every model call {LATENCY} s"))
    results = []
    for name, make, workers in runs:
        cells = make()
        wall, records = timed(study, cells, root, name.replace(" ", "_").replace(",", ""))
        cells.close()
        results.append((name, wall, workers, records))
    started = time.perf_counter()
    env = {"env_vars": {"GRAPHOPT_LOCAL_INSTANCES": "1", "GRAPHOPT_LOCAL_THREADS": "1"}} if args.embedded else None
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False, runtime_env=env)
    warm(ray, 2)
    print(f"Ray cluster of 2 workers started and warmed in {time.perf_counter() - started:.1f} s (not counted below)")
    cells = RayCells(config, transport_factory=ray_factory)
    wall, records = timed(study, cells, root, "ray")
    results.append(("Ray, 2 workers", wall, 2, records))
    ray.shutdown()
    base = results[0][1]
    reference = {r.key: r.result["test"] for r in results[0][3]}
    print(f"{'executor':<22}{'wall s':>9}{'speedup':>9}{'overhead ms/cell':>18}  same scores")
    verdicts = {}
    for name, wall, workers, records in results:
        same = {r.key: r.result["test"] for r in records} == reference
        print(f"{name:<22}{wall:>9.2f}{base / wall:>8.2f}x{overhead_ms(wall, workers, records):>18.1f}  {same}")
        verdicts[f"{name}: same scores as {results[0][0]}"] = same
        target = MIN_SPEEDUP["embedded" if args.embedded else "scripted"].get(name)
        if target is not None:
            verdicts[f"{name}: speedup {base / wall:.2f}x (target > {target}x)"] = base / wall > target
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for what, ok in verdicts.items():
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
    if not all(verdicts.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
