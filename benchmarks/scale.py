"""A search on the local executor against Ray at the same parallelism, on one node and on two.

    python benchmarks/scale.py                          # scripted model, 0.1 s per call
    python benchmarks/scale.py --embedded               # the embedded model
    python benchmarks/scale.py --embedded --kill-node   # and the two-node run with a node killed

One small seeded search (`run_search`, the tiny preset cut down), run in one process four ways:

1. the local executor, `--parallel` units in flight;
2. Ray on one node (`ray.init` with `--parallel` CPUs), `RayExecutor` at the same parallelism;
3. Ray on a cluster of two nodes on this machine (`ray.cluster_utils.Cluster`: a head node with
   no CPU for tasks, two worker nodes of `--parallel / 2` CPUs each), the same parallelism: units
   go to the other nodes' workers, the driver alone writes the store and run dir;
4. (scripted, or with --kill-node) the two-node run again, one worker node killed while a unit
   runs on it: Ray must run that unit again on the other node, and the run must still give the
   local store. Not timed (one node does the rest of the work).

Each Ray start-up (the cluster, and warming its workers: graphopt imported and, embedded, the
model loaded in each worker) is timed and printed apart, outside the runs' wall time; the local
executor's pool is loaded before its clock too. On the embedded model the local executor gets a
pool of `--parallel` one-thread llama.cpp instances; each Ray worker gets one (worker_config), so
both runs have the same instances on the same cores.

Verdicts (exit 1 when one fails): every Ray run gives the local run's store (candidates, their
scores) and winner, with no evaluation failed; Ray at the same parallelism takes at most
`MAX_SLOWDOWN` times the local executor's wall time, on one node and on two.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from graphopt.graph.io import load_graph
from graphopt.lm import LM, LMConfig
from graphopt.search.budgets import get_budget
from graphopt.search.executor import LocalExecutor
from graphopt.search.pipeline import run_search
from graphopt.search.ray_executor import RayExecutor, worker_config
from graphopt.store import RunStore
from graphopt.tasks import get_task
from graphopt.testing import FakeModel
from graphopt.testing.scripted_study import scripted_config
from graphopt.testing.search_model import scripted_search

MAX_SLOWDOWN = 1.25  # Ray's wall / the local executor's, at the same parallelism
# A killed node is noticed after about a second instead of Ray's default 15 s.
FAST_NODE_DEATH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 3}


class Workload:
    """The search, its model, and how each executor gets that model."""

    def __init__(self, embedded: bool, latency: float, parallel: int):
        self.embedded, self.latency, self.parallel = embedded, latency, parallel
        self.task = get_task("word_sorting", difficulty="easy", sizes=(12, 10, 10), seed=3)
        if embedded:
            from graphopt.lm.config import LocalConfig

            # Three seed graphs scored on the program model (no optimizer rounds): about a minute a
            # unit on 2 busy cores; a generation with tgd or meta calls takes tens of minutes there.
            self.budget = get_budget("tiny", seeds=("fewshot", "fewshot_rs", "knn"), val_limit=6, test_limit=6,
                                     minibatch=3, prompt_iterations=0, generations=0, wall_time=None)
            self.config = LMConfig(cache_dir=None, local=LocalConfig(instances=parallel, threads=1))
        else:
            self.budget = get_budget("tiny", seeds=("tgd", "tgd_select"), val_limit=6, test_limit=6, minibatch=3,
                                     generations=2, children=3, wall_time=None)
            self.config = scripted_config()
        # Ray workers: one llama.cpp instance each (worker_config), as many workers as units in flight.
        self.ray_config = self.config.model_copy(update={"local": self.config.local.model_copy(update={"instances": None})})

    def transport_factory(self, marker: Path | None = None) -> Any:
        """What builds a Ray worker's transport (None: the settings' own, the embedded model)."""
        if marker is not None:
            local = worker_config(self.ray_config).local if self.embedded else None
            return functools.partial(NodeMarker, str(marker), None if self.embedded else scripted_search, self.latency, local)
        return None if self.embedded else functools.partial(FakeModel, fn=scripted_search, latency=self.latency)

    def _driver_transport(self) -> Any:
        return None if self.embedded else FakeModel(fn=scripted_search, latency=self.latency)

    def local_lm(self) -> LM:
        return LM(self.config, transport=self._driver_transport(), budget=self.budget.lm_budget())

    def ray_lm(self) -> LM:
        """The driver's client of a Ray run (its own calls, the meta model's, use the same model)."""
        return LM(self.ray_config, transport=self._driver_transport(), budget=self.budget.lm_budget())

    def search(self, lm: LM, executor: Any, run_dir: Path) -> tuple[float, Any]:
        graphs = [load_graph(name) for name in self.budget.seeds]
        started = time.perf_counter()
        try:
            report = asyncio.run(run_search(self.task, lm, self.budget, run_dir, graphs, executor=executor))
        finally:
            executor.close()
            lm.close()
        return time.perf_counter() - started, report


class NodeMarker:
    """A worker's transport (the scripted model, or the embedded one) that writes the node of each call to a file."""

    def __init__(self, marker: str, fn: Any, latency: float, local: Any = None):
        from graphopt.lm import LiteLLMTransport

        self.marker = marker
        self.inner = FakeModel(fn=fn, latency=latency) if fn else LiteLLMTransport(local=local)

    async def send(self, request: Any) -> Any:
        import ray

        with open(self.marker, "a") as out:
            out.write(ray.get_runtime_context().get_node_id() + "\n")
        return await self.inner.send(request)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def contents(run_dir: Path) -> list[tuple]:
    with RunStore.open(run_dir, create=False) as store:
        return [(c.id, c.graph_hash, c.parents, c.origin, c.generation, c.evaluation.status, c.evaluation.val_score)
                for c in store.candidates()]


def warm(ray: Any, workers: int, config: LMConfig | None) -> None:
    """Imports graphopt in `workers` worker processes at once and, embedded, loads each one's model."""

    @ray.remote(num_cpus=1)
    def ready() -> int:
        import graphopt.search.ray_executor  # noqa: F401
        import graphopt.search.unit  # noqa: F401

        if config is not None:
            from graphopt.lm.local import LocalModels, resolve_model_path

            LocalModels.pool(resolve_model_path("smollm2"), worker_config(config).local).fill()
        time.sleep(1.0)  # held, so that the next task lands on another worker process
        return os.getpid()

    ray.get([ready.remote() for _ in range(workers)])


def start_cluster(ray: Any, nodes: int, parallel: int) -> Any:
    """`nodes` == 1: ray.init on this machine; else a Cluster of a CPU-less head and `nodes` worker nodes."""
    from ray.cluster_utils import Cluster

    common = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    if nodes == 1:
        ray.init(num_cpus=parallel, **common)
        return None
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "_system_config": FAST_NODE_DEATH})
    for _ in range(nodes):
        cluster.add_node(num_cpus=max(1, parallel // nodes))
    ray.init(address=cluster.address, **common)
    cluster.wait_for_nodes()
    return cluster


def kill_mid_run(ray: Any, cluster: Any, marker: Path, runner: threading.Thread) -> str:
    """Waits for a call on a worker node, then kills that node (no graceful stop); says what it did."""
    deadline = time.monotonic() + 300
    while not (marker.exists() and marker.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not marker.exists():
        return "no call reached a worker node: nothing killed"
    busy = marker.read_text().split()[0]
    victim = next(node for node in cluster.worker_nodes if node.node_id == busy)
    cluster.remove_node(victim, allow_graceful=False)
    return f"killed worker node {busy[:8]} with a unit in flight (run still going: {runner.is_alive()})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedded", action="store_true", help="the embedded model instead of the scripted one")
    parser.add_argument("--parallel", type=int, default=2, help="units in flight, in every run (default 2)")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per scripted model call")
    parser.add_argument("--kill-node", action=argparse.BooleanOptionalAction, default=None,
                        help="the two-node run again with a worker node killed (default: scripted only)")
    args = parser.parse_args(argv)
    import ray

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    work = Workload(args.embedded, args.latency, args.parallel)
    kill = (not args.embedded) if args.kill_node is None else args.kill_node
    root = Path(tempfile.mkdtemp(prefix="graphopt-scale-"))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    model = "the embedded model" if args.embedded else f"the scripted model, {args.latency} s per call"
    print(f"search: word_sorting, seeds {', '.join(work.budget.seeds)}, {work.budget.generations} generation(s); "
          f"{model}; {args.parallel} units in flight everywhere")

    lm = work.local_lm()
    if args.embedded:
        from graphopt.lm.local import LocalModels, resolve_model_path

        started = time.perf_counter()
        LocalModels.pool(resolve_model_path("smollm2"), work.config.local).fill()
        print(f"local pool of {args.parallel} instances loaded in {time.perf_counter() - started:.1f} s (not counted)")
    runs = {"local executor": work.search(lm, LocalExecutor(work.task, lm, args.parallel), root / "local")}
    if args.embedded:
        LocalModels.close_all()  # its memory and threads are not the Ray runs'
    reference = contents(root / "local")

    for nodes in (1, 2):
        name = f"Ray, {nodes} node{'s' if nodes > 1 else ''}"
        started = time.perf_counter()
        cluster = start_cluster(ray, nodes, args.parallel)
        warm(ray, args.parallel, work.ray_config if args.embedded else None)
        print(f"{name}: started and warmed in {time.perf_counter() - started:.1f} s (not counted)")
        lm = work.ray_lm()
        runs[name] = work.search(lm, RayExecutor(work.task, lm, parallel=args.parallel,
                                                 transport_factory=work.transport_factory()), root / f"ray{nodes}")
        if nodes == 2 and kill:
            marker, outcome = root / "calls-by-node", {}

            def search() -> None:
                lm = work.ray_lm()
                executor = RayExecutor(work.task, lm, parallel=args.parallel, max_retries=3,
                                       transport_factory=work.transport_factory(marker))
                outcome["run"] = work.search(lm, executor, root / "killed")

            runner = threading.Thread(target=search)
            runner.start()
            print(f"Ray, 2 nodes, one killed: {kill_mid_run(ray, cluster, marker, runner)}")
            runner.join()
            if "run" in outcome:
                runs["Ray, 2 nodes, one killed"] = outcome["run"]
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()

    base, best = runs["local executor"][0], runs["local executor"][1].best.candidate_id
    print(f"{'run':<28}{'wall s':>9}{'local / Ray':>13}  same store and winner as local")
    checks = {}
    for name, (wall, report) in runs.items():
        same = contents(root / {"local executor": "local", "Ray, 1 node": "ray1", "Ray, 2 nodes": "ray2"}.get(name, "killed")) == reference
        same = same and report.best.candidate_id == best
        timed = name != "Ray, 2 nodes, one killed"
        print(f"{name:<28}{wall:>9.2f}{(f'{base / wall:.2f}x' if timed else '-'):>13}  {same}")
        if name != "local executor":
            checks[f"{name}: the local store and winner, no evaluation failed"] = same
        if timed and name != "local executor":
            checks[f"{name}: wall {wall / base:.2f}x the local executor's (target <= {MAX_SLOWDOWN}x)"] = wall / base <= MAX_SLOWDOWN
    if kill and "Ray, 2 nodes, one killed" not in runs:
        checks["Ray, 2 nodes, one killed: the run finished"] = False
    failed = sum(1 for *_, status, _ in reference if status != "done")
    checks[f"local executor: every evaluation done ({failed} not)"] = failed == 0
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for what, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
