"""The structure search: children are valid graphs or counted rejections; elites survive."""

from __future__ import annotations

import asyncio
import random

from search_fakes import scripted

from graphopt.graph.io import load_graph
from graphopt.graph.validate import validate
from graphopt.lm import LM
from graphopt.testing import FakeModel
from graphopt.search import LLMProposal, MaxGenerations, StructureSearch, SubgraphCrossover
from graphopt.search.evolution import ProposalMix
from graphopt.search.budgets import get_budget
from graphopt.search.evaluator import Evaluator
from graphopt.search.run import Run
from graphopt.store import RunStore
from graphopt.tasks import get_task


def _setup(tmp_path, fn):
    task = get_task("word_sorting", difficulty="easy", sizes=(12, 10, 10), seed=4)
    store = RunStore.open(tmp_path / "run")
    store.ensure_run({"task": task.name, "models": {}})
    lm = LM(transport=FakeModel(fn=fn), cache_dir=None)
    evaluator = Evaluator(task, lm, Run(store), get_budget("tiny", val_limit=4, minibatch=2, inner_steps=1), task.seed_program)
    seeds = [asyncio.run(evaluator.evaluate(load_graph(n))) for n in ("tgd", "tgd_select")]
    return lm, evaluator, seeds


def test_children_are_valid_graphs_with_lineage(tmp_path):
    lm, evaluator, seeds = _setup(tmp_path, scripted)
    search = StructureSearch(stop=MaxGenerations(2), crossover=SubgraphCrossover(), children=3, population=3)
    outcome = asyncio.run(search.run(seeds, evaluator, random.Random(1)))

    assert outcome.generations == 2
    children = [c for c in evaluator.run.store.candidates() if c.generation > 0]
    assert children, "two generations of three proposals made no child"
    for child in children:
        assert child.parents, child.id
        assert child.origin in {"mutation", "crossover"}
    for fitness in outcome.results.values():
        assert validate(fitness.spec) == []
    assert outcome.best.val_score == max(f.val_score for f in outcome.results.values())
    generations = evaluator.run.store.events("generation")
    assert [e.payload["generation"] for e in generations] == [0, 1, 2]


def test_unusable_llm_proposals_are_rejected_and_counted(tmp_path):
    def junk_for_graphs(messages):
        text = messages[-1]["content"]
        if "operator" in text.lower() and "graph" in text.lower() and "improve one prompt" not in text:
            return "not json at all"
        return scripted(messages)

    lm, evaluator, seeds = _setup(tmp_path, junk_for_graphs)
    search = StructureSearch(stop=MaxGenerations(1), proposer=LLMProposal(lm), mix=ProposalMix(llm=1.0), children=2)
    outcome = asyncio.run(search.run(seeds, evaluator, random.Random(0)))

    assert outcome.rejected == 2
    rejected = evaluator.run.store.events("rejected_proposal")
    assert len(rejected) == 2 and all(e.payload["kind"] == "llm" and e.payload["reasons"] for e in rejected)
    assert all(c.generation == 0 for c in evaluator.run.store.candidates())  # nothing invalid was stored


def test_survivors_are_distinct_graphs_even_with_a_tournament():
    from graphopt.search.archive import Scored

    search = StructureSearch(population=4)  # Tournament(size=3) picks with replacement
    items = [Scored(None, f"g{i}", 0.1 * i, 10.0) for i in range(6)]
    for seed in range(30):
        kept = search._survivors(items[:3], items[3:], random.Random(seed))
        assert len(kept) == 4
        assert len({s.graph_hash for s in kept}) == 4, [s.graph_hash for s in kept]
        assert kept[0].graph_hash == "g5"  # the elite survives
