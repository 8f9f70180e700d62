"""Subgraph crossover: children validate, differ from both parents and carry pieces of each."""

from __future__ import annotations

import random
import pytest
from search_fixtures import builtin_graphs, registered_test_operators, seed_graphs

from graphopt.graph.validate import canonical_hash, validate
from graphopt.search.crossover import Crossover, SubgraphCrossover, segments
from graphopt.search.graph_edit import EditableGraph


@pytest.fixture(autouse=True, scope="module")
def _operators():
    with registered_test_operators():
        yield


def _check_pairs(graphs, seeds):
    crossover = SubgraphCrossover()
    made = 0
    for a in graphs:
        for b in graphs:
            for seed in seeds:
                child = crossover.cross(a, b, random.Random(seed))
                if child is None:
                    continue
                made += 1
                assert validate(child) == [], child
                assert canonical_hash(child) not in {canonical_hash(a), canonical_hash(b)}
                assert child.provenance.parents == [canonical_hash(a), canonical_hash(b)]
                assert child.provenance.mutation == "crossover"
                assert len({n.id for n in child.nodes}) == len(child.nodes)
    return made


def test_every_child_of_test_graphs_is_valid_and_new_or_none():
    assert _check_pairs(seed_graphs(), range(8)) > 0


def test_every_child_of_builtin_graphs_is_valid_and_new_or_none():
    graphs = builtin_graphs()
    assert len(graphs) >= 5
    assert _check_pairs(graphs, range(4)) > 0


def test_child_takes_a_segment_from_the_second_parent():
    tgd, _, _, opro, _, _ = seed_graphs()
    children = [SubgraphCrossover().cross(tgd, opro, random.Random(s)) for s in range(20)]
    children = [c for c in children if c is not None]
    assert children
    assert any("s_history" in {n.op for n in c.nodes} for c in children)
    for child in children:
        assert "from s_opro" in child.description


def test_copied_node_ids_never_collide():
    _, tgd_select, _, opro, _, _ = seed_graphs()  # both have nodes named rewrite and select
    for seed in range(20):
        child = SubgraphCrossover().cross(tgd_select, opro, random.Random(seed))
        if child is not None:
            assert len({n.id for n in child.nodes}) == len(child.nodes)


def test_crossing_a_graph_with_itself_gives_nothing_new():
    single = seed_graphs()[5]
    child, reason = SubgraphCrossover().cross_explained(single, single, random.Random(0))
    assert child is None and reason


def test_segments_are_single_exit_pieces():
    tgd = seed_graphs()[0]
    found = {(tuple(sorted(s.nodes)), s.type, s.is_exit) for s in segments(EditableGraph(tgd))}
    assert found == {
        (("critique",), "Feedback", False),
        (("rewrite",), "Candidates", True),
        (("critique", "rewrite"), "Candidates", True),
    }


def test_crossover_is_a_strategy_object():
    class First(Crossover):
        def cross(self, a, b, rng):
            return a

    assert First().cross(*seed_graphs()[:2], random.Random(0)).name == "s_tgd"
    assert SubgraphCrossover.name == "crossover"
