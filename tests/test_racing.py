"""Successive halving: a graph's inner loop in two rungs is the same loop, and a race gives the
full evaluation only to the graphs whose screen shows signal, at a lower spend."""

from __future__ import annotations

import asyncio

from search_fakes import scripted

from graphopt.graph.io import load_graph
from graphopt.lm import LM, FakeModel
from graphopt.loop import optimize
from graphopt.search.budgets import get_budget
from graphopt.search.fitness import EvalRequest, Evaluator
from graphopt.store import RunStore
from graphopt.tasks import get_task

SEEDS = ("tgd", "tgd_select", "opro", "fewshot")


def _task():
    return get_task("word_sorting", difficulty="easy", sizes=(15, 10, 10), seed=4)


def test_a_loop_in_two_rungs_makes_the_steps_of_one_run():
    task, graph = _task(), load_graph("tgd")
    lm = LM(transport=FakeModel(fn=scripted), cache_dir=None)
    sizes = {"minibatch_size": 3, "val_limit": 8, "seed": 5}

    whole = asyncio.run(optimize(task.seed_program, graph, task, lm, steps=3, **sizes))
    screen = asyncio.run(optimize(task.seed_program, graph, task, lm, steps=1, final_limit=3, **sizes))
    rest = asyncio.run(optimize(task.seed_program, graph, task, lm, steps=3, resume=screen, **sizes))

    assert screen.val_limit == 3 and len(screen.val_scores) == 3 and len(screen.history) == 1
    assert [s.minibatch for s in rest.history] == [s.minibatch for s in whole.history]
    assert [s.accepted for s in rest.history] == [s.accepted for s in whole.history]
    assert rest.best_program.id == whole.best_program.id
    assert (rest.best_val, rest.val_scores, rest.val_limit) == (whole.best_val, whole.val_scores, 8)


def _race(run_dir, screen: int):
    task = _task()
    store = RunStore.open(run_dir)
    store.ensure_run({"task": task.name, "models": {}})
    fake = FakeModel(fn=scripted)
    lm = LM(transport=fake, cache_dir=run_dir / "cache")  # a winner's screen calls are served again
    budget = get_budget("small", val_limit=8, minibatch=3, inner_steps=2, screen=screen)
    evaluator = Evaluator(task, lm, store, budget, task.seed_program)
    results = asyncio.run(evaluator.evaluate_many([EvalRequest(load_graph(n)) for n in SEEDS], race=True))
    return results, store, fake


def test_a_race_gives_the_full_evaluation_to_the_better_half_for_less(tmp_path):
    raced, store, fake = _race(tmp_path / "raced", screen=3)
    full, full_store, unraced = _race(tmp_path / "full", screen=0)

    statuses = [f.status for f in raced]
    assert statuses.count("done") == 2 and statuses.count("screened") == 2
    fewshot = raced[SEEDS.index("fewshot")]
    assert fewshot.status == "screened"  # demos of wrong answers: no signal on the screen
    best_raced = max(f.val_score for f in raced if f.ok)
    assert best_raced == max(f.val_score for f in full) == 1.0  # the race kept the winner
    assert fake.calls < unraced.calls

    def work(row) -> int:
        return row.usage["total"]["calls"] + row.usage["total"]["cache_hits"]

    for f, g in zip(raced, full):  # a loser's screen costs well under its full evaluation
        if f.status == "screened":
            assert work(store.evaluation(f.candidate_id)) < 0.7 * work(full_store.evaluation(g.candidate_id))

    for f in raced:
        row = store.evaluation(f.candidate_id)
        assert row.status == f.status and row.usage["total"]["calls"] > 0  # every rung is accounted
        if f.status == "screened":
            assert "screened out" in row.error and f.val_score is not None
    val, screen = store.example_scores("val"), store.example_scores("screen")
    assert {cid for cid in val} == {f.candidate_id for f in raced if f.ok}  # the matrix: full ones only
    assert all(len(scores) == 3 for scores in screen.values()) and len(screen) == 2
    (race,) = store.events("race")
    assert sum(g["promoted"] for g in race.payload["graphs"]) == 2


def test_a_screened_graph_is_never_the_winner_and_keeps_its_outcome_on_resume(tmp_path):
    raced, store, _ = _race(tmp_path / "run", screen=3)
    assert store.best().evaluation.status == "done"
    again, _, fake = _race(tmp_path / "run", screen=3)
    assert fake.calls == 0  # finished and screened graphs come from the store
    assert [f.status for f in again] == [f.status for f in raced]


def test_the_report_says_which_graphs_were_screened_out(tmp_path):
    from graphopt.viz.report import build_report

    raced, store, _ = _race(tmp_path / "run", screen=3)
    page = build_report(store)
    screened = [f for f in raced if f.status == "screened"]
    assert "2 screened out" in page
    for f in screened:
        assert f"screened {f.val_score:.3f}" in page


def test_the_estimate_counts_the_race_and_screen_0_turns_it_off():
    from graphopt.cli import main
    from graphopt.search.budgets import estimate

    raced, plain = get_budget("small"), get_budget("small", screen=0)
    assert estimate(raced, prompt_tokens=80)["program"]["calls"] < estimate(plain, prompt_tokens=80)["program"]["calls"]
    assert main(["search", "--task", "word_sorting", "--budget", "small", "--screen", "0", "--dry-run"]) == 0
    assert main(["search", "--task", "word_sorting", "--screen", "-1", "--dry-run"]) == 2
