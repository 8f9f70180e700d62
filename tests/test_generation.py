"""One generation: proposals journaled once, registered in slot order and evaluated; a resumed
generation replays the journal instead of proposing again; the built-in proposers share one protocol."""

from __future__ import annotations

import asyncio
import random

import pytest
from search_fakes import scripted

from graphopt.errors import BudgetExceeded
from graphopt.graph.io import load_graph
from graphopt.lm import LM
from graphopt.search.archive import graph_hash
from graphopt.search.budgets import get_budget
from graphopt.search.crossover import SubgraphCrossover
from graphopt.search.evaluator import Evaluator
from graphopt.store.events import ProposalMade, ProposalRejected
from graphopt.search.generation import run_generation
from graphopt.search.llm_mutation import LLMProposal
from graphopt.search.mutations import Mutate, default_mutations
from graphopt.search.prompt_opt import MetaPromptOptimizer
from graphopt.search.proposal import Proposed, Proposer, Slot
from graphopt.search.run import Run
from graphopt.store import RunStore
from graphopt.tasks import get_task
from graphopt.testing import FakeModel


def _evaluator(run_dir) -> Evaluator:
    task = get_task("word_sorting", difficulty="easy", sizes=(12, 10, 10), seed=2)
    store = RunStore.open(run_dir)
    store.ensure_run({"task": task.name, "models": {}})
    lm = LM(transport=FakeModel(fn=scripted), cache_dir=None)
    return Evaluator(task, lm, Run(store), get_budget("tiny", val_limit=5, minibatch=3, inner_steps=1), task.seed_program)


class Scripted:
    """A proposer that gives, per key, a graph, nothing, or a budget stop; counts its calls."""

    def __init__(self, outcomes: dict[str, object]):
        self.outcomes, self.calls = outcomes, []

    async def propose(self, slot: Slot) -> Proposed:
        self.calls.append(slot.key)
        outcome = self.outcomes[slot.key]
        if isinstance(outcome, BaseException):
            raise outcome
        return Proposed("mutation", outcome, (), "scripted", () if outcome is not None else ("nothing here",))


def _generation(evaluator: Evaluator, proposer: Scripted, keys: list[str]):
    return asyncio.run(run_generation(evaluator, keys, lambda key: (proposer, Slot(key, 0)), generation=1))


def test_a_generation_journals_registers_and_evaluates_in_slot_order(tmp_path):
    evaluator = _evaluator(tmp_path / "run")
    keys = ["gen1/child0", "gen1/child1", "gen1/child2", "gen1/child3"]
    proposer = Scripted({
        keys[0]: load_graph("tgd_select"), keys[1]: None, keys[2]: BudgetExceeded("run cap"), keys[3]: load_graph("tgd"),
    })
    made = _generation(evaluator, proposer, keys)
    assert [i for i, _ in made.results] == [0, 3] and all(f.ok for _, f in made.results)
    assert made.rejected == 1 and made.stop == "budget reached: run cap" and set(made.proposed) == {0, 1, 3}
    rows = evaluator.run.store.candidates()
    assert [r.name for r in rows] == ["tgd_select", "tgd"] and {r.generation for r in rows} == {1}
    journal = evaluator.run.events(ProposalMade, ProposalRejected)
    assert [(type(e).__name__, e.key) for e in journal] == [
        ("ProposalMade", keys[0]), ("ProposalRejected", keys[1]), ("ProposalMade", keys[3]),
    ]  # the slot a budget cut is not journaled: a resume proposes it again


class Flaky:
    """A proposer whose model calls fail at the provider for its first `bad` proposals of a key."""

    def __init__(self, graphs: dict[str, object], bad: int):
        self.graphs, self.bad, self.calls = graphs, bad, []

    async def propose(self, slot: Slot) -> Proposed:
        self.calls.append(slot.key)
        failed = self.calls.count(slot.key) <= self.bad
        usage = {"levels": {"meta": {"calls": 1, "failures": 1 if failed else 0}}}
        graph = load_graph("opro") if failed else self.graphs[slot.key]  # what it made of a failed call
        return Proposed("llm", graph, (), None, (), usage)


def test_a_proposal_with_failed_provider_calls_is_made_again_and_never_journaled_as_made(tmp_path):
    keys = ["gen1/child0", "gen1/child1"]
    evaluator = _evaluator(tmp_path / "run")
    evaluator.max_error_rate = 1.0  # tolerate them here: the rule under test is the retry
    once = Flaky({keys[0]: load_graph("tgd_select"), keys[1]: load_graph("tgd")}, bad=1)
    made = _generation(evaluator, once, keys)
    assert once.calls == [keys[0], keys[1], keys[0], keys[1]]  # each made again once
    assert [r.name for r in evaluator.run.store.candidates()] == ["tgd_select", "tgd"] and made.unmade == 0
    always = Flaky({keys[0]: load_graph("tgd_select"), keys[1]: load_graph("tgd")}, bad=9)
    evaluator = _evaluator(tmp_path / "other")
    evaluator.max_error_rate = 1.0
    made = _generation(evaluator, always, keys)
    assert made.unmade == 2 and made.results == [] and evaluator.run.store.candidates() == []
    assert evaluator.run.events(ProposalMade, ProposalRejected) == []  # a resume proposes them again


def test_a_resumed_generation_replays_the_journal_and_proposes_only_what_a_budget_cut(tmp_path):
    keys = ["gen1/child0", "gen1/child1", "gen1/child2"]
    first = Scripted({keys[0]: load_graph("tgd_select"), keys[1]: None, keys[2]: BudgetExceeded("budget reached")})
    _generation(_evaluator(tmp_path / "run"), first, keys)
    again = Scripted({keys[2]: load_graph("opro")})
    evaluator = _evaluator(tmp_path / "run")  # a new process over the same store
    made = _generation(evaluator, again, keys)
    assert again.calls == [keys[2]] and made.rejected == 1 and made.stop == ""
    assert [f.spec.name for _, f in made.results] == ["tgd_select", "opro"]
    assert [f.from_store for _, f in made.results] == [True, False]


def test_mutations_of_one_generation_avoid_each_others_graphs(tmp_path):
    parent = _evaluator(tmp_path / "run")
    seed = asyncio.run(parent.evaluate(load_graph("tgd_select"))).scored()
    taken: set[str] = {seed.graph_hash}
    mutate = Mutate(default_mutations(), set())
    # The same key twice: the same draws, so only `taken` can make the second child differ.
    made = [asyncio.run(mutate.propose(Slot("gen1/child0", 7, [seed], taken=taken))) for _ in range(2)]
    assert all(m.spec is not None and m.parents == (seed.candidate_id,) for m in made)
    assert graph_hash(made[0].spec) != graph_hash(made[1].spec) and {graph_hash(m.spec) for m in made} <= taken


def test_every_builtin_proposer_makes_a_proposal_for_a_slot(tmp_path):
    evaluator = _evaluator(tmp_path / "run")
    fitness = [asyncio.run(evaluator.evaluate(load_graph(n))) for n in ("tgd_select", "opro")]
    scored = [f.scored() for f in fitness]  # structure proposers build on archive items, prompt edits on evaluations
    lm = LM(transport=FakeModel(fn=scripted), cache_dir=None)
    proposers: list[tuple[Proposer, list]] = [
        (Mutate(default_mutations(), set()), scored[:1]),
        (SubgraphCrossover(), scored),
        (LLMProposal(lm), scored),
        (MetaPromptOptimizer(lm), fitness[:1]),
    ]
    origins = []
    for proposer, parents in proposers:
        slot = Slot("gen1/child0", 3, list(parents), task=evaluator.task)
        proposed = asyncio.run(proposer.propose(slot))
        assert isinstance(proposed, Proposed) and proposed.parents == tuple(p.candidate_id for p in parents)
        assert proposed.spec is not None or proposed.reasons
        origins.append(proposed.origin)
    assert origins == ["mutation", "crossover", "llm", "prompt_opt"]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_slot_draws_from_its_own_keyed_generator(seed):
    a, b = Slot("gen1/child0", seed), Slot("gen1/child0", seed)
    assert a.rng.random() == b.rng.random() and Slot("gen1/child1", seed).rng.random() != Slot("gen1/child0", seed).rng.random()
