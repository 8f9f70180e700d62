"""The Ray executor on a cluster of two nodes (Ray's own test-cluster utility, on this machine):
the same store as the local executor, and a worker node killed mid-run loses no evaluation."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' runs these tests")

from ray.cluster_utils import Cluster  # noqa: E402

from graphopt.graph.io import load_graph  # noqa: E402
from graphopt.lm import LM, LMConfig  # noqa: E402
from graphopt.lm.wire import Request, Response  # noqa: E402
from graphopt.search.budgets import get_budget  # noqa: E402
from graphopt.search.executor import LocalExecutor  # noqa: E402
from graphopt.search.pipeline import run_search  # noqa: E402
from graphopt.search.ray_executor import RayExecutor  # noqa: E402
from graphopt.store import RunStore  # noqa: E402
from graphopt.tasks import get_task  # noqa: E402
from graphopt.testing import FakeModel  # noqa: E402
from graphopt.testing.search_model import scripted_search  # noqa: E402

# A dead node is noticed after about one health-check period instead of Ray's default 15 s.
FAST_NODE_DEATH = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_failure_threshold": 3}


@pytest.fixture(scope="module")
def cluster():
    """A head node with no CPU for tasks and two worker nodes of one CPU each, joined by this process."""
    import sys

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "_system_config": FAST_NODE_DEATH})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    cluster.wait_for_nodes()
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


class NodeMarker(FakeModel):
    """The scripted model, writing the id of the node each call runs on into a file."""

    def __init__(self, marker: str, latency: float):
        super().__init__(fn=scripted_search, latency=latency)
        self.marker = marker

    async def send(self, request: Request) -> Response:
        with open(self.marker, "a") as out:
            out.write(ray.get_runtime_context().get_node_id() + "\n")
        return await super().send(request)


def _task():
    return get_task("word_sorting", difficulty="easy", sizes=(12, 10, 10), seed=3)


def _search(run_dir: Path, executor_of, transport=None):
    task = _task()
    budget = get_budget("tiny", val_limit=6, test_limit=6, minibatch=3, generations=2, children=3)
    lm = LM(LMConfig(cache_dir=None), transport=transport or FakeModel(fn=scripted_search), budget=budget.lm_budget())
    executor = executor_of(task, lm)
    graphs = [load_graph(name) for name in ("tgd", "tgd_select")]
    try:
        return asyncio.run(run_search(task, lm, budget, run_dir, graphs, executor=executor))
    finally:
        executor.close()


def _contents(run_dir: Path) -> list[tuple]:
    with RunStore.open(run_dir, create=False) as store:
        return [
            (c.id, c.graph_hash, c.parents, c.origin, c.generation, c.evaluation.status, c.evaluation.val_score)
            for c in store.candidates()
        ]


def test_a_search_on_two_nodes_gives_the_local_store_and_survives_a_node_killed_mid_run(cluster, tmp_path):
    cluster, workers = cluster
    assert len({node["NodeID"] for node in ray.nodes() if node["Alive"] and node["Resources"].get("CPU")}) == 2
    local = _search(tmp_path / "local", lambda task, lm: LocalExecutor(task, lm, 2))

    # A healthy run on both nodes: the local store, with units run on each node.
    marker = tmp_path / "nodes"
    on_two = _search(tmp_path / "ray", lambda task, lm: RayExecutor(
        task, lm, transport_factory=functools.partial(NodeMarker, str(marker), 0.002)))
    assert _contents(tmp_path / "ray") == _contents(tmp_path / "local")
    assert on_two.best.candidate_id == local.best.candidate_id
    healthy_calls = marker.read_text().split()
    assert len(set(healthy_calls)) == 2

    # The same search again; once a unit is in flight, the node it runs on is killed.
    marker = tmp_path / "nodes-killed"
    outcome: dict = {}

    def search() -> None:
        try:
            outcome["report"] = _search(tmp_path / "killed", lambda task, lm: RayExecutor(
                task, lm, max_retries=3, transport_factory=functools.partial(NodeMarker, str(marker), 0.02)))
        except BaseException as exc:  # noqa: BLE001  (raised again below, in the test's thread)
            outcome["error"] = exc

    runner = threading.Thread(target=search)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while not (marker.exists() and marker.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        busy = marker.read_text().split()[0]
        victim = next(node for node in workers if node.node_id == busy)
        cluster.remove_node(victim, allow_graceful=False)
        assert runner.is_alive()  # killed mid-run
    finally:
        runner.join(timeout=60)
    assert not runner.is_alive() and "error" not in outcome, outcome.get("error")

    contents = _contents(tmp_path / "killed")
    assert contents == _contents(tmp_path / "local")
    assert all(status == "done" for *_, status, _ in contents)  # no evaluation lost or recorded failed
    assert outcome["report"].best.candidate_id == local.best.candidate_id
    # The unit lost with the node ran again on the other one: more calls than the healthy run made.
    assert len(marker.read_text().split()) > len(healthy_calls)
