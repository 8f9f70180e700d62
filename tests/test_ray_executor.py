"""The Ray executor on a real local cluster: the same store as the local executor, lost workers
retried or recorded, fatal provider errors stop the search, and usage reaches the driver."""

from __future__ import annotations

import asyncio
import functools
import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' runs these tests")

from graphopt.errors import LLMError  # noqa: E402
from graphopt.graph.io import load_graph  # noqa: E402
from graphopt.lm import LM, LMConfig  # noqa: E402
from graphopt.lm.wire import Request, Response  # noqa: E402
from graphopt.loop import LoopSizes  # noqa: E402
from graphopt.search.budgets import get_budget  # noqa: E402
from graphopt.search.executor import LocalExecutor  # noqa: E402
from graphopt.search.pipeline import run_search  # noqa: E402
from graphopt.search.ray_executor import RayExecutor  # noqa: E402
from graphopt.store import RunStore  # noqa: E402
from graphopt.tasks import get_task  # noqa: E402
from graphopt.testing import FakeModel  # noqa: E402
from graphopt.testing.search_model import scripted_search  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """One local cluster of two worker slots for the module (starting one takes seconds)."""
    import sys

    # The workers cannot import this test module: its fake models travel by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _task():
    return get_task("word_sorting", difficulty="easy", sizes=(12, 10, 10), seed=3)


def _budget(**overrides):
    return get_budget("tiny", **{"val_limit": 6, "test_limit": 6, "minibatch": 3, "generations": 2, "children": 3, **overrides})


def _lm(transport=None, budget=None):
    return LM(LMConfig(cache_dir=None), transport=transport, budget=(budget or _budget()).lm_budget())


def _search(run_dir: Path, executor_of, transport=None):
    task, budget = _task(), _budget()
    lm = _lm(transport or FakeModel(fn=scripted_search), budget)
    executor = executor_of(task, lm)
    graphs = [load_graph(name) for name in ("tgd", "tgd_select")]
    try:
        return asyncio.run(run_search(task, lm, budget, run_dir, graphs, executor=executor)), lm
    finally:
        executor.close()


def _contents(run_dir) -> list[tuple]:
    with RunStore.open(run_dir, create=False) as store:
        return [
            (c.id, c.graph_hash, c.parents, c.origin, c.generation, c.evaluation.status, c.evaluation.val_score)
            for c in store.candidates()
        ]


class DiesOnce(FakeModel):
    """The scripted model whose worker process dies at its first call, once per marker file."""

    def __init__(self, marker: str):
        super().__init__(fn=scripted_search)
        self.marker = marker

    async def send(self, request: Request) -> Response:
        if not os.path.exists(self.marker):
            Path(self.marker).write_text("died")
            os._exit(1)  # the worker process dies with the unit in flight
        return await super().send(request)


class AlwaysDies(FakeModel):
    async def send(self, request: Request) -> Response:
        os._exit(1)


class BadKey(FakeModel):
    async def send(self, request: Request) -> Response:
        raise LLMError("invalid api key", provider="openai", model="gpt-4o-mini", status=401)


def test_a_seeded_search_gives_the_same_store_on_ray_as_on_the_local_executor(tmp_path):
    local, _ = _search(tmp_path / "local", lambda task, lm: LocalExecutor(task, lm, 1))
    factory = functools.partial(FakeModel, fn=scripted_search, latency=0.001)
    on_ray, lm = _search(tmp_path / "ray", lambda task, lm: RayExecutor(task, lm, transport_factory=factory))

    assert _contents(tmp_path / "ray") == _contents(tmp_path / "local")
    assert on_ray.best.candidate_id == local.best.candidate_id
    assert len(_contents(tmp_path / "local")) >= 4
    # The workers' program and optimizer calls are in the driver's ledger, and in the store's totals.
    assert lm.ledger.level("program").calls > 0 and lm.ledger.level("optimizer").calls > 0
    with RunStore.open(tmp_path / "ray", create=False) as store:
        assert store.usage_totals()["levels"]["program"]["calls"] == lm.ledger.level("program").calls


def test_a_worker_that_dies_is_retried_and_the_search_gives_the_same_store(tmp_path):
    _search(tmp_path / "local", lambda task, lm: LocalExecutor(task, lm, 1))
    factory = functools.partial(DiesOnce, str(tmp_path / "died"))
    _search(tmp_path / "ray", lambda task, lm: RayExecutor(task, lm, transport_factory=factory, max_retries=2))

    assert (tmp_path / "died").is_file()  # a worker did die
    assert _contents(tmp_path / "ray") == _contents(tmp_path / "local")


def test_a_unit_whose_workers_keep_dying_is_recorded_failed_with_the_reason(tmp_path):
    task, lm = _task(), _lm(FakeModel(fn=scripted_search))
    executor = RayExecutor(task, lm, transport_factory=AlwaysDies, max_retries=1)
    from graphopt.search.unit import EvalUnit

    unit = EvalUnit("c0001", load_graph("tgd"), task.seed_program, LoopSizes(steps=1, minibatch=2, val_limit=3))
    result = asyncio.run(executor.run(unit))
    executor.close()  # joined the module's cluster: it keeps running

    assert result.status == "failed"
    assert "Ray worker lost the evaluation" in result.reason
    assert ray.is_initialized()


def test_a_fatal_provider_error_on_a_worker_stops_the_search_on_the_driver(tmp_path):
    with pytest.raises(LLMError, match="invalid api key"):
        _search(tmp_path / "run", lambda task, lm: RayExecutor(task, lm, transport_factory=BadKey))
    with RunStore.open(tmp_path / "run", create=False) as store:
        assert store.run().status == "interrupted"


def test_a_study_on_ray_gives_the_same_cells_as_on_the_local_executor(tmp_path):
    from graphopt.study import LocalCells, RayCells, StudyStore, run_study
    from graphopt.testing.scripted_study import scripted_config, scripted_study

    study = scripted_study(seeds=[0])
    results = {}
    for name, cells in (
        ("local", LocalCells(scripted_config(), FakeModel(fn=scripted_search), 1)),
        ("ray", RayCells(scripted_config(), transport_factory=functools.partial(FakeModel, fn=scripted_search))),
    ):
        with StudyStore.in_dir(tmp_path / name, study.name) as store:
            asyncio.run(run_study(study, store, cells, tmp_path / name))
            results[name] = {r.key: (r.status, r.result["test"], r.result["scores"], r.result["graph"]) for r in store.cells()}
        cells.close()
    assert results["ray"] == results["local"]
    assert len(results["ray"]) == 2 * 4 + 1 and all(v[0] == "done" for v in results["ray"].values())
    assert (tmp_path / "ray" / "cells").is_dir()  # the workers' search cells wrote their run dirs there


def test_workers_get_one_embedded_model_instance_unless_the_settings_chose_a_number():
    from graphopt.lm.config import LocalConfig
    from graphopt.search.ray_executor import worker_config

    assert worker_config(LMConfig(cache_dir=None, local=LocalConfig())).local.instances == 1
    assert worker_config(LMConfig(cache_dir=None, local=LocalConfig(instances=3, threads=2))).local.instances == 3
