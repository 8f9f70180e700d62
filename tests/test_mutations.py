"""Structural mutations: every proposal validates and changes the graph; each mutation does its one job."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from pydantic import BaseModel, Field
from search_fixtures import (
    TEST_OPERATOR_NAMES,
    builtin_graphs,
    builtin_operator_names,
    graph,
    registered_test_operators,
    seed_graphs,
)

from graphopt.graph.io import load_graph
from graphopt.graph.spec import GraphSpec
from graphopt.graph.validate import canonical_hash, validate
from graphopt.search.mutations import (
    AddParallelBranch,
    ChangeParams,
    DeleteOperator,
    InsertOperator,
    Mutation,
    Rewire,
    SwapOperator,
    default_mutations,
    mutate,
)
from graphopt.search.graph_edit import child_name
from graphopt.search.params import perturb_param

SEEDS = range(25)
MUTATION_CLASSES = [InsertOperator, DeleteOperator, SwapOperator, AddParallelBranch, Rewire, ChangeParams]


@pytest.fixture(autouse=True, scope="module")
def _operators():
    with registered_test_operators():
        yield


def _mutations(classes=MUTATION_CLASSES, operators=None) -> list[Mutation]:
    return [cls() if cls is ChangeParams else cls(operators=operators) for cls in classes]


def _children(mutation: Mutation, parent: GraphSpec, seeds=SEEDS) -> list[GraphSpec]:
    return [c for s in seeds if (c := mutation.propose(parent, random.Random(s))) is not None]


def _ops(spec: GraphSpec) -> Counter:
    return Counter(n.op for n in spec.nodes)


def _assert_proper_child(child: GraphSpec, parent: GraphSpec, mutation_name: str) -> None:
    assert validate(child) == [], child
    assert canonical_hash(child) != canonical_hash(parent)
    assert child.provenance.parents == [canonical_hash(parent)]
    assert child.provenance.mutation == mutation_name
    assert child.name.startswith(parent.name.split("+")[0]) and mutation_name in child.name
    assert len({n.id for n in child.nodes}) == len(child.nodes)


# --- contract: every mutation, every seed graph, many seeds ---------------------------------------


@pytest.mark.parametrize("cls", MUTATION_CLASSES, ids=lambda c: c.__name__)
def test_every_proposal_on_test_graphs_is_valid_and_changed_or_none(cls):
    mutation = _mutations([cls], operators=TEST_OPERATOR_NAMES)[0]
    proposed = 0
    for parent in seed_graphs():
        for seed in SEEDS:
            child = mutation.propose(parent, random.Random(seed))
            if child is not None:
                proposed += 1
                _assert_proper_child(child, parent, mutation.name)
    assert proposed > 0, f"{mutation.name} proposed nothing on any test graph"


@pytest.mark.parametrize("cls", MUTATION_CLASSES, ids=lambda c: c.__name__)
def test_every_proposal_on_builtin_graphs_is_valid_and_changed_or_none(cls):
    parents = builtin_graphs()
    assert len(parents) >= 5
    mutation = _mutations([cls], operators=builtin_operator_names())[0]
    proposed = 0
    for parent in parents:
        for seed in range(12):
            child = mutation.propose(parent, random.Random(seed))
            if child is not None:
                proposed += 1
                _assert_proper_child(child, parent, mutation.name)
                assert not set(_ops(child)) & set(TEST_OPERATOR_NAMES)
    assert proposed > 0, f"{mutation.name} proposed nothing on any built-in graph"


def test_same_seed_gives_same_child():
    parent = seed_graphs()[2]
    for mutation in _mutations(operators=TEST_OPERATOR_NAMES):
        first = mutation.propose(parent, random.Random(7))
        again = mutation.propose(parent, random.Random(7))
        assert first == again


def test_mutate_gives_a_valid_child_for_every_seed_graph():
    mutations = _mutations(operators=TEST_OPERATOR_NAMES)
    for parent in seed_graphs() + builtin_graphs():
        for seed in range(5):
            child, failed = mutate(parent, mutations, random.Random(seed))
            assert child is not None, (parent.name, failed)
            assert validate(child) == []
            assert canonical_hash(child) != canonical_hash(parent)


_REPRO = """
import random, sys
sys.path.insert(0, {tests!r})
from search_fixtures import registered_test_operators, seed_graphs
from graphopt.graph.validate import canonical_hash
from graphopt.search.crossover import SubgraphCrossover
from graphopt.search.mutations import default_mutations, mutate
with registered_test_operators():
    graphs, out = seed_graphs(), []
    for i, g in enumerate(graphs):
        for s in range(4):
            child, _ = mutate(g, default_mutations(), random.Random(s))
            cross = SubgraphCrossover().cross(g, graphs[(i + 1) % len(graphs)], random.Random(s))
            out += [c and (c.name, canonical_hash(c), [n.id for n in c.nodes]) for c in (child, cross)]
print(out)
"""


def test_children_do_not_depend_on_the_process_hash_seed():
    script = _REPRO.format(tests=str(Path(__file__).parent))
    runs = [
        subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": seed},
                       capture_output=True, text=True, check=True).stdout
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1] and "None, None" not in runs[0]


def test_mutate_reports_each_failed_try_with_its_reason():
    class Never(Mutation):
        name = "never"

        def propose(self, parent, rng):
            return None

    class Broken(Mutation):
        name = "broken"

        def propose(self, parent, rng):
            return parent.model_copy(update={"edges": []})

    child, failed = mutate(seed_graphs()[0], [Never(), Broken()], random.Random(0), max_tries=6)
    assert child is None and len(failed) == 6
    reasons = dict(failed)
    assert reasons["never"] == "not applicable"
    assert reasons["broken"].startswith("invalid:")


def test_mutate_counts_an_unchanged_child_as_failed():
    class Same(Mutation):
        name = "same"

        def propose(self, parent, rng):
            return parent.model_copy(update={"name": "renamed"})

    child, failed = mutate(seed_graphs()[0], [Same()], random.Random(0), max_tries=2)
    assert child is None and failed == [("same", "no change"), ("same", "no change")]


# --- insert ----------------------------------------------------------------------------------------


def test_insert_puts_a_type_compatible_operator_on_an_edge():
    parent = seed_graphs()[0]
    children = _children(InsertOperator(operators=["s_paraphrase"]), parent)
    assert children
    for child in children:
        assert _ops(child) - _ops(parent) == Counter({"s_paraphrase": 1})
        para = next(n.id for n in child.nodes if n.op == "s_paraphrase")
        into = [e for e in child.edges if e.target_node == para]
        assert [e.target_port for e in into] == ["candidates"]


def test_insert_can_append_after_the_exit():
    parent = seed_graphs()[0]
    exits = set()
    for child in _children(InsertOperator(operators=["s_select"]), parent):
        sources = {e.source_node for e in child.edges}
        exits.update(n.op for n in child.nodes if n.id not in sources)
    assert "s_select" in exits


def test_insert_finds_no_site_when_no_edge_carries_the_operators_type():
    mutation = InsertOperator(operators=["s_history"])
    child, reason = mutation.propose_explained(seed_graphs()[0], random.Random(0))
    assert child is None and reason == "no applicable site"


def test_insert_feeds_other_required_inputs_from_upstream():
    for child in _children(InsertOperator(operators=["s_fewshot"]), seed_graphs()[0]):
        shots = next(n.id for n in child.nodes if n.op == "s_fewshot")
        assert {e.target_port for e in child.edges if e.target_node == shots} == {"candidates", "traces"}


# --- delete ----------------------------------------------------------------------------------------


def test_delete_of_a_feedback_node_drops_its_optional_edge():
    parent = seed_graphs()[0]
    children = _children(DeleteOperator(), parent)
    assert any(_ops(c) == Counter({"s_rewrite": 1}) for c in children)


def test_delete_of_the_exit_makes_its_predecessor_the_exit():
    parent = seed_graphs()[1]
    children = [c for c in _children(DeleteOperator(), parent) if "s_select" not in _ops(c)]
    assert children
    for child in children:
        sources = {e.source_node for e in child.edges}
        assert [n.op for n in child.nodes if n.id not in sources] == ["s_rewrite"]


def test_delete_bridges_a_node_in_the_middle():
    parent = seed_graphs()[4]
    children = [c for c in _children(DeleteOperator(), parent) if "s_paraphrase" not in _ops(c)]
    assert children
    assert any(e.source == "input.program" and e.target == "rewrite.candidates" for e in children[0].edges)


def test_delete_never_empties_a_graph():
    child, reason = DeleteOperator().propose_explained(seed_graphs()[5], random.Random(0))
    assert child is None and reason


# --- swap ------------------------------------------------------------------------------------------


def test_swap_replaces_an_operator_with_a_port_compatible_one():
    parent = seed_graphs()[5]
    child = SwapOperator(operators=["s_rewrite"]).propose(parent, random.Random(0))
    assert child is not None
    assert [n.op for n in child.nodes] == ["s_rewrite"]
    assert child.nodes[0].id != "para"  # the node is renamed after its new operator
    assert child.nodes[0].params == {}


def test_swap_keeps_params_the_new_operator_shares():
    parent = seed_graphs()[1]  # select(k=2) is the exit
    children = [c for c in _children(SwapOperator(operators=["s_rewrite"]), parent) if "s_select" not in _ops(c)]
    assert children
    assert all(n.params.get("k") == 2 for c in children for n in c.nodes if n.id.startswith("s_rewrite"))


def test_swap_refuses_operators_missing_a_connected_port():
    # s_rewrite's feedback edge has nowhere to go on s_paraphrase or s_select
    parent = seed_graphs()[0]
    assert _children(SwapOperator(operators=["s_paraphrase", "s_select"]), parent) == []


# --- parallel branch -------------------------------------------------------------------------------


def test_parallel_branch_duplicates_a_node_and_joins_with_a_many_input_operator():
    parent = seed_graphs()[0]
    children = _children(AddParallelBranch(operators=TEST_OPERATOR_NAMES), parent)
    assert children
    for child in children:
        joins = [n for n in child.nodes if n.op == "s_ensemble"]
        assert len(joins) == 1
        assert len([e for e in child.edges if e.target_node == joins[0].id]) == 2
        assert _ops(child)["s_rewrite"] + _ops(child)["s_critique"] > 2


def test_parallel_branch_joins_an_existing_many_input_directly():
    parent = seed_graphs()[2]
    children = [c for c in _children(AddParallelBranch(operators=TEST_OPERATOR_NAMES), parent)
                if _ops(c)["s_ensemble"] == 1]
    assert children
    assert any(_ops(c)["s_rewrite"] == 3 for c in children)


def test_parallel_branch_has_nothing_to_join_without_a_many_input_operator():
    child = AddParallelBranch(operators=["s_select", "s_rewrite"]).propose(seed_graphs()[0], random.Random(0))
    assert child is None


# --- rewire ----------------------------------------------------------------------------------------


def test_rewire_moves_one_edge_source_keeping_the_graph_acyclic():
    parent = seed_graphs()[4]
    children = _children(Rewire(), parent)
    assert children
    for child in children:
        old, new = set(parent.edges) - set(child.edges), set(child.edges) - set(parent.edges)
        assert len(old) == len(new) == 1
        assert next(iter(old)).target == next(iter(new)).target


def test_rewire_is_not_applicable_without_another_source_of_the_type():
    assert Rewire().propose(seed_graphs()[0], random.Random(0)) is None


# --- params ----------------------------------------------------------------------------------------


def test_change_params_changes_one_value_within_its_bounds():
    parent = seed_graphs()[1]
    children = _children(ChangeParams(), parent, seeds=range(60))
    assert len(children) == 60
    seen = set()
    for child in children:
        changed = [(a.id, k) for a, b in zip(parent.nodes, child.nodes)
                   for k in set(a.params) | set(b.params) if a.params.get(k) != b.params.get(k)]
        assert len(changed) == 1
        seen.add(changed[0][1])
        rewrite = child.node("rewrite").params
        assert 1 <= rewrite.get("k", 1) <= 5 and 0.0 <= rewrite.get("temperature", 0.7) <= 1.2
        assert 1 <= child.node("select").params.get("k", 1) <= 5
    assert seen == {"k", "temperature"}


def test_change_params_switches_a_choice():
    parent = graph("g", {"j": "s_ensemble"}, ["input.program -> j.candidates"])
    child = ChangeParams().propose(parent, random.Random(0))
    assert child.nodes[0].params == {"mode": "combine"}


def test_change_params_search_limits_narrow_the_declared_bounds():
    parent = graph("g", {"r": ("s_rewrite", {"k": 5})}, ["input.program -> r.candidates"])
    ks = {c.nodes[0].params.get("k", 5) for c in _children(ChangeParams(limits={"k": (4, 5)}), parent)}
    assert ks <= {4, 5}


def test_change_params_reaches_fewshots_choice_and_order_and_keeps_greedy_sizes_in_the_search_limits():
    spec = load_graph("fewshot")
    greedy = {"choose": "greedy", "rounds": 3, "tries": 8}
    parent = spec.model_copy(update={"nodes": [
        n.model_copy(update={"params": {**n.params, **greedy}}) if n.op == "fewshot" else n for n in spec.nodes]})
    before = next(n.params for n in parent.nodes if n.op == "fewshot")
    changed = set()
    for child in _children(ChangeParams(), parent, seeds=range(200)):
        after = next(n.params for n in child.nodes if n.op == "fewshot")
        assert 1 <= after["rounds"] <= 3 and 1 <= after["tries"] <= 8  # narrower than the fields' 8 and 16
        changed |= {k for k in set(after) | set(before) if after.get(k) != before.get(k)}
    assert {"choose", "order", "by", "rounds", "tries"} <= changed


class _P(BaseModel):
    gt: float = Field(0.5, gt=0.0, le=1.0)
    unset: int | None = Field(None, ge=1)
    unbounded: int = 10
    text: str = "x"


def test_perturb_param_respects_constraints_and_skips_unknown_scales():
    rng = random.Random(0)
    fields = _P.model_fields
    assert all(0.0 < perturb_param(fields["gt"], 0.5, rng) <= 1.0 for _ in range(200))
    assert perturb_param(fields["unset"], None, rng) is None  # no scale to guess from
    assert perturb_param(fields["text"], "x", rng) is None
    assert {perturb_param(fields["unbounded"], 10, rng) for _ in range(100)} == {8, 9, 11, 12}
    assert perturb_param(fields["unbounded"], 10, rng, limits=(1, 3)) in {1, 2, 3}


def test_child_names_stay_short_and_keep_the_root():
    name = "tgd_select"
    for tag in ["insert", "swap", "params"] * 6:
        name = child_name(name, tag)
        assert len(name) <= 48
    assert name.startswith("tgd_select+") and name.endswith("+params")


def test_default_mutations_has_one_of_each():
    assert sorted(m.name for m in default_mutations()) == ["delete", "insert", "parallel", "params", "rewire", "swap"]


def test_edits_bringing_in_an_untried_operator_come_first():
    """Coverage before exploitation: with `format` untried, every insert into tgd or fewshot brings
    it in; without the preference, few of the same draws do."""
    picks = {True: 0, False: 0}
    for prefer in (True, False):
        for seed in range(20):
            for mutation, parent in ((InsertOperator(), "tgd"), (InsertOperator(), "fewshot")):
                child, _ = mutate(load_graph(parent), [mutation], random.Random(seed), untried={"format"} if prefer else ())
                picks[prefer] += any(node.op == "format" for node in child.nodes)
    assert picks[True] == 40 and picks[False] <= 10, picks
