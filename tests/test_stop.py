"""Stop conditions and their composition with | and &."""

from __future__ import annotations

import time

import pytest

from graphopt.lm.ledger import Ledger, Usage
from graphopt.search.stop import (
    AllStop,
    AnyStop,
    BudgetStop,
    MaxGenerations,
    NoImprovement,
    SearchState,
    WallTime,
)


def test_max_generations_stops_once_n_are_done():
    stop = MaxGenerations(3)
    assert stop.should_stop(SearchState(generation=2)) is None
    assert stop.should_stop(SearchState(generation=3)) == "reached 3 generations"


def test_budget_stop_caps_total_tokens_and_dollars():
    usage = {"program": {"tokens": 700, "cost": 0.2}, "meta": {"tokens": 400, "cost": 0.5}}
    state = SearchState(usage=usage)
    assert BudgetStop(tokens=1200).should_stop(state) is None
    assert BudgetStop(tokens=1100).should_stop(state) == "total tokens 1100 >= cap 1100"
    assert "total dollars" in BudgetStop(dollars=0.7).should_stop(state)
    assert BudgetStop(dollars=0.71).should_stop(state) is None


def test_budget_stop_caps_one_level():
    state = SearchState(usage={"program": {"tokens": 700, "cost": 0.2}, "meta": {"tokens": 400, "cost": 0.5}})
    assert BudgetStop(levels={"meta": {"tokens": 400}}).should_stop(state) == "meta tokens 400 >= cap 400"
    assert BudgetStop(levels={"meta": {"dollars": 1.0}, "optimizer": {"tokens": 1}}).should_stop(state) is None
    with pytest.raises(ValueError):
        BudgetStop(levels={"meta": {"calls": 3}})


def test_budget_stop_reads_a_ledger_summary():
    ledger = Ledger()
    ledger.record("meta", "m", Usage(calls=1, prompt_tokens=300, completion_tokens=200, cost=0.25))
    ledger.record("program", "p", Usage(calls=4, prompt_tokens=50, completion_tokens=50))
    usage = SearchState.usage_from(ledger)
    assert usage == {"meta": {"tokens": 500.0, "cost": 0.25}, "program": {"tokens": 100.0, "cost": 0.0}}
    assert SearchState.usage_from(ledger.to_dict()) == usage
    assert BudgetStop(levels={"meta": {"tokens": 500}}).should_stop(SearchState(usage=usage))


def test_no_improvement_waits_patience_generations():
    stop = NoImprovement(patience=2)
    assert stop.should_stop(SearchState(best_scores=[0.5, 0.5])) is None  # not enough history yet
    assert stop.should_stop(SearchState(best_scores=[0.4, 0.5, 0.6])) is None
    assert stop.should_stop(SearchState(best_scores=[0.4, 0.6, 0.6, 0.6])) == "no improvement over 0.6 in 2 generations"


def test_no_improvement_ignores_gains_within_min_delta():
    stop = NoImprovement(patience=1, min_delta=0.05)
    assert stop.should_stop(SearchState(best_scores=[0.5, 0.53]))
    assert stop.should_stop(SearchState(best_scores=[0.5, 0.56])) is None
    with pytest.raises(ValueError):
        NoImprovement(patience=0)


def test_wall_time_measures_from_the_start():
    assert WallTime(60).should_stop(SearchState()) is None
    assert WallTime(60).should_stop(SearchState(started_at=time.monotonic() - 61)).startswith("wall time 61s")


def test_or_stops_when_any_condition_does_with_its_reason():
    stop = MaxGenerations(10) | NoImprovement(patience=1) | WallTime(3600)
    assert isinstance(stop, AnyStop) and len(stop.conditions) == 3  # flattened
    assert stop.should_stop(SearchState(generation=1, best_scores=[0.5, 0.7])) is None
    assert stop.should_stop(SearchState(generation=10, best_scores=[0.5, 0.7])) == "reached 10 generations"
    assert stop.should_stop(SearchState(generation=2, best_scores=[0.7, 0.7])).startswith("no improvement")


def test_and_stops_only_when_all_conditions_do():
    stop = MaxGenerations(5) & NoImprovement(patience=1)
    assert isinstance(stop, AllStop) and len((stop & WallTime(1)).conditions) == 3
    assert stop.should_stop(SearchState(generation=5, best_scores=[0.5, 0.7])) is None
    assert stop.should_stop(SearchState(generation=4, best_scores=[0.7, 0.7])) is None
    reason = stop.should_stop(SearchState(generation=5, best_scores=[0.7, 0.7]))
    assert reason.startswith("reached 5 generations and no improvement")


def test_mixed_composition_nests():
    stop = BudgetStop(tokens=100) | (MaxGenerations(2) & NoImprovement(patience=1))
    assert stop.should_stop(SearchState(generation=3, best_scores=[0.1, 0.2])) is None
    assert stop.should_stop(SearchState(generation=3, best_scores=[0.2, 0.2]))
    assert stop.should_stop(SearchState(usage={"program": {"tokens": 100, "cost": 0}})).startswith("total tokens")
    with pytest.raises(TypeError):
        MaxGenerations(1) | 3
