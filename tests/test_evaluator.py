"""The fitness cache: a graph is scored once per run, whatever its node ids, even across processes."""

from __future__ import annotations

import asyncio

from search_fakes import scripted

from graphopt.graph.io import load_graph
from graphopt.graph.spec import EdgeSpec, GraphSpec
from graphopt.lm import LM
from graphopt.testing import FakeModel
from graphopt.search.budgets import get_budget
from graphopt.search.evaluator import Evaluator
from graphopt.search.run import Run
from graphopt.store import RunStore
from graphopt.tasks import get_task


def _renamed(spec: GraphSpec, suffix: str) -> GraphSpec:
    ids = {n.id: n.id + suffix for n in spec.nodes}

    def end(text: str) -> str:
        node, port = text.split(".", 1)
        return f"{ids.get(node, node)}.{port}"

    nodes = [n.model_copy(update={"id": ids[n.id]}) for n in reversed(spec.nodes)]
    edges = [EdgeSpec(source=end(e.source), target=end(e.target)) for e in spec.edges]
    return spec.model_copy(update={"nodes": nodes, "edges": edges, "name": spec.name + "_renamed"})


def _evaluator(run_dir, fake):
    task = get_task("word_sorting", difficulty="easy", sizes=(12, 10, 10), seed=2)
    store = RunStore.open(run_dir)
    store.ensure_run({"task": task.name, "models": {}})
    lm = LM(transport=fake, cache_dir=None)
    return Evaluator(task, lm, Run(store), get_budget("tiny", val_limit=5, minibatch=3), task.seed_program)


def test_a_renamed_graph_is_not_scored_again(tmp_path):
    fake = FakeModel(fn=scripted)
    evaluator = _evaluator(tmp_path / "run", fake)
    spec = load_graph("tgd_select")
    first = asyncio.run(evaluator.evaluate(spec))
    calls = fake.calls

    again = asyncio.run(evaluator.evaluate(_renamed(spec, "_x"), origin="mutation"))

    assert fake.calls == calls  # no model call at all
    assert again.from_store and again.candidate_id == first.candidate_id
    assert again.val_score == first.val_score
    assert (evaluator.scored_now, evaluator.reused) == (1, 1)


def test_a_new_process_reuses_the_stored_score(tmp_path):
    spec = load_graph("tgd")
    first = asyncio.run(_evaluator(tmp_path / "run", FakeModel(fn=scripted)).evaluate(spec))

    fake = FakeModel(fn=scripted)
    reopened = _evaluator(tmp_path / "run", fake)  # as after a kill: a new store object and client
    again = asyncio.run(reopened.evaluate(spec))

    assert fake.calls == 0 and again.from_store
    assert again.program == first.program and again.history == first.history
