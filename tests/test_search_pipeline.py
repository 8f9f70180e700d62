"""The search pipeline end to end on a scripted model: winner, store, export, resume."""

from __future__ import annotations

import asyncio
import json

import pytest

from graphopt.errors import ConfigError
from graphopt.graph.io import load_graph
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.search.budgets import get_budget
from graphopt.search.pipeline import run_search
from graphopt.store import RunDir, RunStore
from graphopt.tasks import get_task

from search_fakes import scripted


def _task():
    return get_task("word_sorting", difficulty="easy", sizes=(12, 10, 10), seed=3)


def _lm(fake: FakeModel, cache_dir=None) -> LM:
    return LM(LMConfig(cache_dir=cache_dir), transport=fake)


def _budget(**overrides):
    return get_budget("tiny", val_limit=6, test_limit=6, minibatch=3, **overrides)


def _run(tmp_path, fake, *, resume=False, budget=None, cache_dir=None):
    task = _task()
    seeds = [load_graph(name) for name in ("tgd", "tgd_select")]
    lm = _lm(fake, cache_dir)
    return asyncio.run(run_search(task, lm, budget or _budget(), RunDir(tmp_path / "run", resume=resume), seeds))


def test_search_finds_a_better_graph_and_exports_it(tmp_path):
    fake = FakeModel(fn=scripted)
    report = _run(tmp_path, fake)

    assert report.best.val_score == 1.0  # "carefully" made every validation answer right
    saved = json.loads((tmp_path / "run" / "best.graph.json").read_text())
    assert saved["provenance"]["task"] == "word_sorting"
    assert saved["provenance"]["scores"]["val"] == 1.0
    assert "test" in saved["provenance"]["scores"]
    assert {"program", "optimizer", "meta"} <= set(saved["provenance"]["models"])  # judge too while it records every level
    assert load_graph(tmp_path / "run" / "best.graph.json").nodes  # loads back as a graph

    store = RunStore.open(tmp_path / "run", create=False)
    candidates = store.candidates()
    origins = {c.origin for c in candidates}
    assert {"seed", "prompt_opt"} <= origins
    assert store.run().status == "finished"
    assert any(c.parents for c in candidates)  # lineage recorded
    roles = [r.role for r in report.rows]
    assert roles.count("seed") + roles.count("screened seed") == 2 and roles[-1] == "best"  # one lost the race
    # What the winner costs to use, per answered test example, beside its accuracy.
    best = report.rows[-1]
    assert best.per_example["calls"] == 1.0 and best.per_example["tokens"] > 10
    assert [e.payload["candidate"] for e in store.events("inference")].count(best.candidate_id) == 1
    from graphopt.viz.report import build_report

    assert f"{best.per_example['tokens']:,.0f} program tokens per answer (one model call each)" in build_report(store)


def test_an_evaluation_measures_calls_and_tokens_per_example_a_vote_costs_its_voters():
    from graphopt.program import evaluate
    from graphopt.program import Program

    task = _task()
    lm = _lm(FakeModel(default="apple"))
    single = asyncio.run(evaluate(task.seed_program, task.test[:4], task, lm))
    vote = task.seed_program.model_copy(update={"vote": (Program(instruction="b"), Program(instruction="c"))})
    voted = asyncio.run(evaluate(vote, task.test[:4], task, lm))
    assert single.per_example["calls"] == 1.0 and voted.per_example["calls"] == 3.0
    assert voted.per_example["tokens"] > single.per_example["tokens"] > 0
    again = asyncio.run(evaluate(task.seed_program, task.test[:4], task, lm))  # cache hits still cost a call each
    assert again.per_example == single.per_example


def test_existing_run_dir_needs_resume(tmp_path):
    _run(tmp_path, FakeModel(fn=scripted))
    with pytest.raises(ConfigError, match="--resume"):
        _run(tmp_path, FakeModel(fn=scripted))


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the pipeline catches it."""


class _Killer:
    """Raises Killed at the n-th model call, like a kill mid-run."""

    def __init__(self, after: int):
        self.after = after
        self.calls = 0

    def __call__(self, messages, request=None):
        self.calls += 1
        if self.calls == self.after:
            raise Killed
        return scripted(messages, request)


def test_interrupted_run_resumes_without_rescoring_finished_graphs(tmp_path):
    first = FakeModel(fn=_Killer(after=60))
    with pytest.raises(Killed):
        _run(tmp_path, first)
    store = RunStore.open(tmp_path / "run", create=False)
    done_before = {
        c.graph_hash: c.evaluation.finished_at
        for c in store.candidates()
        if c.evaluation and c.evaluation.status == "done"
    }
    store.close()
    assert done_before, "the kill should come after some graphs were scored"

    second = FakeModel(fn=scripted)
    report = _run(tmp_path, second, resume=True)

    store = RunStore.open(tmp_path / "run", create=False)
    assert store.run().status == "finished"
    # Every graph finished before the kill was reused, not scored again.
    assert report.reused >= len(done_before)
    after = {c.graph_hash: c.evaluation.finished_at for c in store.candidates()}
    for graph_hash, finished_at in done_before.items():
        assert after[graph_hash] == finished_at  # not scored again
    assert report.best.val_score == 1.0
