"""Parent selection: tournament, Pareto fronts with crowding, elitism, on hand-made populations."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from graphopt.search.archive import Scored
from graphopt.search.selection import (
    Elitism,
    ParetoSelection,
    Tournament,
    elite,
    pareto_front,
    pareto_ranks,
)


def s(name: str, score: float, cost: float) -> Scored:
    return Scored(spec=None, graph_hash=name, val_score=score, cost_tokens=cost)


def names(items) -> list[str]:
    return [i.graph_hash for i in items]


POP = [s("best", 0.9, 900), s("cheap", 0.3, 10), s("mid", 0.6, 100), s("dominated", 0.5, 500), s("worst", 0.1, 1000)]


def test_tournament_of_the_whole_population_always_picks_the_best():
    picked = Tournament(size=len(POP)).select(POP, 10, random.Random(0))
    assert names(picked) == ["best"] * 10


def test_tournament_breaks_score_ties_by_a_changed_program_then_age_never_by_cost():
    unchanged = Scored(spec=None, graph_hash="cheap_noop", val_score=0.5, cost_tokens=10, changed=False)
    older, younger = s("dear_old", 0.5, 900), Scored(spec=None, graph_hash="cheap_new", val_score=0.5, cost_tokens=100, generation=2)
    assert names(Tournament(size=3).select([unchanged, younger, older], 3, random.Random(1))) == ["dear_old"] * 3


def test_tournament_of_one_is_uniform_and_larger_sizes_favour_better_items():
    rng = random.Random(0)
    uniform = Counter(names(Tournament(size=1).select(POP, 2000, rng)))
    strong = Counter(names(Tournament(size=3).select(POP, 2000, rng)))
    assert all(300 < uniform[n] < 500 for n in names(POP))
    assert strong["best"] > uniform["best"] and strong["worst"] < uniform["worst"]
    assert strong["worst"] == 0  # the worst can only win a tournament it is alone in


def test_tournament_of_an_empty_population_is_empty_and_size_must_be_positive():
    assert Tournament().select([], 3, random.Random(0)) == []
    with pytest.raises(ValueError):
        Tournament(size=0)


def test_pareto_front_keeps_the_non_dominated_items_cheapest_first():
    assert names(pareto_front(POP)) == ["cheap", "mid", "best"]
    assert pareto_front([]) == []


def test_pareto_ranks_peel_fronts_in_order():
    assert [sorted(names(f)) for f in pareto_ranks(POP)] == [["best", "cheap", "mid"], ["dominated"], ["worst"]]


def test_equal_items_share_a_front():
    pop = [s("a", 0.5, 10), s("b", 0.5, 10)]
    assert sorted(names(pareto_front(pop))) == ["a", "b"]


def test_pareto_selection_fills_from_the_first_front_then_the_next():
    picked = ParetoSelection().select(POP, 4, random.Random(0))
    assert set(names(picked[:3])) == {"best", "cheap", "mid"}
    assert names(picked[3:]) == ["dominated"]
    assert len(ParetoSelection().select(POP, 50, random.Random(0))) == len(POP)


def test_pareto_selection_cuts_a_front_by_crowding_keeping_its_extremes():
    front = [s("lo", 0.1, 10), s("crowded", 0.5, 49), s("lone", 0.7, 300), s("near", 0.52, 50), s("hi", 0.9, 1000)]
    assert len(pareto_front(front)) == 5
    picked = names(ParetoSelection().select(front, 3, random.Random(0)))
    assert set(picked[:2]) == {"lo", "hi"}
    assert picked[2] == "lone"


def test_elite_is_best_score_then_older_one_per_graph_cost_never_decides():
    pop = POP + [s("best", 0.9, 900), Scored(spec=None, graph_hash="tie", val_score=0.9, cost_tokens=800, generation=1)]
    assert names(elite(pop, 3)) == ["best", "tie", "mid"]
    assert names(Elitism().select(pop, 2, random.Random(0))) == ["best", "tie"]
