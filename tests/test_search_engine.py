"""The search engine: concurrent evaluations that give the same store, resume from the store,
run identity, per-run caps, and bad graphs that are recorded instead of ending the search."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from search_fakes import scripted

from graphopt.errors import ConfigError
from graphopt.graph.io import load_graph
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.lm.wire import Request, Response
from graphopt.search.budgets import get_budget
from graphopt.search.executor import LocalExecutor
from graphopt.search.pipeline import run_search
from graphopt.search.selection import Tournament, select_distinct
from graphopt.store import RunDir, RunStore
from graphopt.tasks import get_task


class JitterModel(FakeModel):
    """The scripted model with a random delay per call, so evaluations finish in any order."""

    def __init__(self, fn, seed: int, kill_after: int | None = None):
        super().__init__(fn=fn)
        self.jitter = random.Random(seed)
        self.kill_after = kill_after

    async def send(self, request: Request) -> Response:
        if self.kill_after is not None and self.calls + 1 >= self.kill_after:
            raise Killed
        await asyncio.sleep(self.jitter.random() * 0.004)
        return await super().send(request)


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the search catches it."""


def _task(seed: int = 3):
    return get_task("word_sorting", difficulty="easy", sizes=(12, 10, 10), seed=seed)


def _budget(**overrides):
    settings = {"val_limit": 6, "test_limit": 6, "minibatch": 3, "generations": 2, "children": 3, **overrides}
    return get_budget("tiny", **settings)


def _search(run_dir, fake, *, parallel=2, resume=False, budget=None, task=None, seeds=("tgd", "tgd_select")):
    task = task or _task()
    lm = LM(LMConfig(cache_dir=None), transport=fake, budget=(budget or _budget()).lm_budget())
    executor = LocalExecutor(task, lm, parallel)
    graphs = [load_graph(name) for name in seeds]
    return asyncio.run(run_search(task, lm, budget or _budget(), RunDir(run_dir, resume=resume), graphs, executor=executor))


def _contents(run_dir) -> list[tuple]:
    """What must not depend on timing: ids, hashes, lineage, origins, statuses and scores."""
    with RunStore.open(run_dir, create=False) as store:
        return [
            (c.id, c.graph_hash, c.parents, c.origin, c.generation, c.evaluation.status, c.evaluation.val_score)
            for c in store.candidates()
        ]


def test_the_same_seed_gives_the_same_store_at_any_parallelism(tmp_path):
    one = _search(tmp_path / "p1", JitterModel(scripted, seed=1), parallel=1)
    four = _search(tmp_path / "p4", JitterModel(scripted, seed=2), parallel=4)

    assert _contents(tmp_path / "p1") == _contents(tmp_path / "p4")
    assert one.best.candidate_id == four.best.candidate_id
    assert len(_contents(tmp_path / "p1")) >= 4


@pytest.mark.parametrize("kill_after", [25, 70, 130])
def test_a_killed_search_resumed_without_cache_rebuilds_the_same_run(tmp_path, kill_after):
    reference = _search(tmp_path / "ref", JitterModel(scripted, seed=0))

    with pytest.raises(Killed):
        _search(tmp_path / "run", JitterModel(scripted, seed=1, kill_after=kill_after))
    with RunStore.open(tmp_path / "run", create=False) as store:
        done = {c.id: c.evaluation.finished_at for c in store.candidates() if c.evaluation.status == "done"}

    resumed = _search(tmp_path / "run", JitterModel(scripted, seed=2), resume=True)  # no cache anywhere

    assert _contents(tmp_path / "run") == _contents(tmp_path / "ref")
    assert resumed.best.candidate_id == reference.best.candidate_id
    with RunStore.open(tmp_path / "run", create=False) as store:
        after = {c.id: c.evaluation.finished_at for c in store.candidates()}
    assert all(after[cid] == finished for cid, finished in done.items())  # 0 finished evaluations repeated
    assert resumed.reused >= len(done)


def test_resume_with_other_task_data_is_refused_naming_it(tmp_path):
    _search(tmp_path / "run", FakeModel(fn=scripted), budget=_budget(generations=0))
    with pytest.raises(ConfigError, match="other task data"):
        _search(tmp_path / "run", FakeModel(fn=scripted), resume=True, task=_task(seed=4), budget=_budget(generations=0))
    with pytest.raises(ConfigError, match="other loop sizes"):
        _search(tmp_path / "run", FakeModel(fn=scripted), resume=True, budget=_budget(generations=0, val_limit=5))


def test_caps_are_per_run_so_a_resume_cannot_spend_them_again(tmp_path):
    capped = _budget(calls=40)
    first = FakeModel(fn=scripted)
    report = _search(tmp_path / "run", first, budget=capped)
    assert report.stop_reason and "40 calls" in report.stop_reason
    with RunStore.open(tmp_path / "run", create=False) as store:
        spent = store.usage_totals()["total"]["calls"]
    assert 40 <= spent <= 40 + 8  # calls in flight when the cap was reached may finish

    second = FakeModel(fn=scripted)
    _search(tmp_path / "run", second, budget=capped, resume=True)
    assert second.calls == 0  # the run's 40 calls are spent: nothing more goes out


def test_an_evaluation_cut_by_a_cap_keeps_its_work_as_partial(tmp_path):
    from graphopt.errors import RunError

    with pytest.raises(RunError, match="no seed graph could be evaluated"):
        _search(tmp_path / "run", FakeModel(fn=scripted), budget=_budget(calls=12), seeds=("tgd",))
    with RunStore.open(tmp_path / "run", create=False) as store:
        (seed,) = store.candidates()
        assert store.run().status == "interrupted"
    assert seed.evaluation.status == "partial" and seed.evaluation.error.count("budget reached") == 1, seed.evaluation.error
    assert seed.evaluation.program_tokens > 0 and seed.evaluation.usage["levels"]["program"]["calls"] >= 10
    assert seed.evaluation.history  # the steps it finished are kept


def _odd_id_proposals(messages, request=None):
    text = messages[-1]["content"]
    if "Propose ONE new graph" in text or "cannot be used" in text:
        return json.dumps({
            "rationale": "r", "name": "odd",
            "nodes": [{"id": "p:1", "op": "paraphrase", "params": []}, {"id": "__end__", "op": "select", "params": []}],
            "edges": [{"source": "input.program", "target": "p:1.candidates"},
                      {"source": "p:1.candidates", "target": "__end__.candidates"}],
        })
    return scripted(messages, request)


def test_a_meta_model_proposing_odd_node_ids_is_rejected_and_the_search_goes_on(tmp_path):
    budget = _budget(llm_share=1.0, crossover_share=0.0, generations=1, children=2, prompt_iterations=0, meta_share=1.0)
    report = _search(tmp_path / "run", FakeModel(fn=_odd_id_proposals), budget=budget)

    assert report.rejected == 2
    with RunStore.open(tmp_path / "run", create=False) as store:
        rejected = store.events("rejected_proposal")
        assert store.run().status == "finished"
    assert len(rejected) == 2 and all("node id" in " ".join(e.payload["reasons"]) for e in rejected)


def test_a_graph_that_fails_to_run_is_a_recorded_failure(tmp_path):
    bad = load_graph("tgd")
    # A saved graph edited by hand: its rewrite's temperature is out of range, so it cannot compile.
    rewrite = next(n for n in bad.nodes if n.op == "rewrite")
    nodes = [n.model_copy(update={"params": {"k": 1, "temperature": 9.0}}) if n is rewrite else n for n in bad.nodes]
    broken = bad.model_copy(update={"nodes": nodes, "name": "broken"})

    task = _task()
    lm = LM(LMConfig(cache_dir=None), transport=FakeModel(fn=scripted))
    graphs = [load_graph("tgd_select"), broken]
    report = asyncio.run(run_search(task, lm, _budget(generations=0, prompt_iterations=0), tmp_path / "run", graphs))

    with RunStore.open(tmp_path / "run", create=False) as store:
        statuses = {c.name: (c.evaluation.status, c.evaluation.error) for c in store.candidates()}
        failed_events = store.events("evaluation_failed")
    assert statuses["broken"][0] == "failed" and statuses["broken"][1]
    assert failed_events and report.best.spec.name == "tgd_select"


def test_two_parents_are_never_the_same_graph():
    from graphopt.search.archive import Scored

    items = [Scored(None, f"g{i}", 0.1 * i, 10.0) for i in range(3)] + [Scored(None, "g2", 0.2, 10.0)]
    for seed in range(50):
        a, b = select_distinct(Tournament(size=3), items, 2, random.Random(seed))
        assert a.graph_hash != b.graph_hash


def test_llm_proposed_params_are_clamped_to_the_search_limits():
    from graphopt.search.llm_mutation import spec_from_proposal

    data = {
        "name": "big",
        "nodes": [{"id": "r", "op": "rewrite", "params": [{"name": "k", "value": "500"}, {"name": "max_tokens", "value": "1000000000"}]}],
        "edges": [{"source": "input.program", "target": "r.candidates"}],
    }
    spec, problems = spec_from_proposal(data)
    assert problems == [] and spec.nodes[0].params == {"k": 5, "max_tokens": 2048}


def test_kill_9_at_two_moments_then_resume_without_cache_finishes_as_a_clean_run(tmp_path):
    from graphopt.testing import scripted_run as kill_resume

    winner, wall = kill_resume.search_seconds(tmp_path / "reference")
    reference = kill_resume.contents(tmp_path / "reference")
    for n, share in enumerate((0.3, 0.7)):
        result = kill_resume.trial(tmp_path, n, share * wall, reference, winner)
        assert result["same_winner"] and result["same_store"], result
        assert result["repeated"] == 0, result


def test_the_store_keeps_a_score_per_validation_example_and_the_winner_is_compared_paired(tmp_path):
    report = _search(tmp_path / "run", FakeModel(fn=scripted), budget=_budget(generations=1))
    with RunStore.open(tmp_path / "run", create=False) as store:
        matrix = store.example_scores("val")
        done = [c for c in store.candidates() if c.evaluation.status == "done"]
    task = _task()
    val_ids = {ex.id for ex in task.val[:6]}
    assert done and all(set(matrix[c.id]) == val_ids for c in done)
    for c in done:  # the mean of the row is the evaluation's score
        assert abs(sum(matrix[c.id].values()) / len(val_ids) - c.evaluation.val_score) < 1e-9
    best = report.rows[-1]
    assert best.role == "best" and "vs " in best.vs_best_seed


def test_a_unit_without_a_validation_score_is_stored_as_failed_not_as_a_score(tmp_path):
    from graphopt.search.executor import Executor
    from graphopt.search.evaluator import Evaluator
    from graphopt.search.run import Run
    from graphopt.search.unit import UnitResult

    class NoScore(Executor):
        async def run(self, unit):
            return UnitResult("done", result={"best_val": None, "history": []}, usage={})

    task = _task()
    store = RunStore.open(tmp_path / "run")
    store.ensure_run({"task": task.name, "models": {}})
    lm = LM(LMConfig(cache_dir=None), transport=FakeModel(fn=scripted))
    evaluator = Evaluator(task, lm, Run(store), _budget(), task.seed_program, executor=NoScore())
    fitness = asyncio.run(evaluator.evaluate(load_graph("tgd")))
    assert fitness.status == "failed" and fitness.val_score is None and not fitness.ok
    row = store.evaluation(fitness.candidate_id)
    assert row.status == "failed" and row.val_score is None and "no validation score" in row.error
    assert store.done_evaluation(fitness.candidate_id) is None  # a resume evaluates it again
    store.close()
