"""Racing on evidence: a loop in rungs is one loop, a race cuts only graphs shown to be worse (the
screen grows until it can tell), cost never decides, and a simulated race keeps a 25% graph."""

from __future__ import annotations

import asyncio
import math
import random

from search_fakes import scripted

from graphopt.graph.io import load_graph
from graphopt.lm import LM
from graphopt.testing import FakeModel
from graphopt.loop import LoopSizes, optimize
from graphopt.search.budgets import PRESETS, get_budget
from graphopt.search.evaluator import Evaluator
from graphopt.search.fitness import EvalRequest
from graphopt.search.run import Run
from graphopt.search.policy import Race, screen_sizes, sign_test
from graphopt.store import RunStore
from graphopt.tasks import get_task

SEEDS = ("tgd", "tgd_select", "opro", "fewshot")


def _task():
    return get_task("word_sorting", difficulty="easy", sizes=(15, 10, 10), seed=4)


def test_a_loop_in_rungs_makes_the_steps_of_one_run_and_scores_no_example_twice():
    task, graph = _task(), load_graph("tgd")
    fake = FakeModel(fn=scripted)
    lm = LM(transport=fake, cache_dir=None)  # no cache: every scored example is a call
    sizes = {"minibatch": 3, "val_limit": 8}
    ids = [ex.id for ex in task.val[:8]]

    whole = asyncio.run(optimize(task.seed_program, graph, task, lm, LoopSizes(steps=3, **sizes), seed=5))
    screen = asyncio.run(optimize(task.seed_program, graph, task, lm, LoopSizes(steps=1, **sizes), seed=5, final_ids=(ids[5], ids[1], ids[6])))
    grown = asyncio.run(optimize(task.seed_program, graph, task, lm, LoopSizes(steps=1, **sizes), seed=5, final_ids=tuple(ids[:7]), resume=screen))
    before = fake.calls
    rest = asyncio.run(optimize(task.seed_program, graph, task, lm, LoopSizes(steps=3, **sizes), seed=5, resume=grown))

    assert set(screen.val_scores) == {ids[5], ids[1], ids[6]} and len(screen.history) == 1
    assert len(grown.history) == 1 and set(grown.val_scores) == set(ids[:7])
    assert {k: grown.val_scores[k] for k in screen.val_scores} == screen.val_scores
    assert [s.minibatch for s in rest.history] == [s.minibatch for s in whole.history]
    assert [s.accepted for s in rest.history] == [s.accepted for s in whole.history]
    assert rest.best_program.id == whole.best_program.id
    assert (rest.best_val, rest.val_scores, rest.val_limit) == (whole.best_val, whole.val_scores, 8)
    # The continuation ran steps 2 and 3 and no validation example of the start program again.
    assert rest.traces < whole.traces and fake.calls - before < whole.traces + len(whole.history)


def _race(run_dir, *, screen: int = 3, fn=scripted, seeds=SEEDS, preset="small", logprob=None, **sizes):
    task = _task()
    store = RunStore.open(run_dir)
    store.ensure_run({"task": task.name, "models": {}})
    fake = FakeModel(fn=fn, logprob=logprob)
    lm = LM(transport=fake, cache_dir=run_dir / "cache")
    budget = get_budget(preset, **{"val_limit": 8, "minibatch": 3, "inner_steps": 2, "screen": screen, **sizes})
    evaluator = Evaluator(task, lm, Run(store), budget, task.seed_program)
    results = asyncio.run(evaluator.evaluate_many([EvalRequest(load_graph(n)) for n in seeds], race=True, key="seeds"))
    return results, store, fake, evaluator


def test_a_race_cuts_only_a_graph_shown_worse_growing_the_screen_until_it_can_tell(tmp_path):
    raced, store, _, _ = _race(tmp_path / "run", screen=3)

    by_name = {f.spec.name: f for f in raced}
    # fewshot (demos of wrong answers) is 0 where the others are right: on 3 examples a sign
    # test cannot tell (p = 1/8), so the screen grew to 6 and then to all 8 validation examples.
    assert by_name["fewshot"].status == "screened"
    assert all(by_name[n].status == "done" for n in ("tgd", "tgd_select", "opro"))
    (race,) = store.events("race")
    assert race.payload["screen"] == 8
    cut = [g for g in race.payload["graphs"] if not g["promoted"]]
    assert [g["candidate"] for g in cut] == [by_name["fewshot"].candidate_id]
    assert "worse than the leader" in cut[0]["why"] and "p=" in cut[0]["why"]
    assert "worse than the leader" in store.evaluation(by_name["fewshot"].candidate_id).error
    val, screened = store.example_scores("val"), store.example_scores("screen")
    assert set(val) == {f.candidate_id for f in raced if f.ok}  # the matrix: full ones only
    assert len(screened[by_name["fewshot"].candidate_id]) == 8
    for f in raced:  # every rung is accounted
        assert store.evaluation(f.candidate_id).usage["total"]["calls"] + store.evaluation(f.candidate_id).usage["total"]["cache_hits"] > 0


def _all_wrong(messages, request=None) -> str:
    reply = scripted(messages, request)
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    return "wrong" if system and "List:" in messages[-1]["content"] else reply


def test_graphs_whose_screens_do_not_differ_all_go_on_whatever_they_cost(tmp_path):
    raced, store, _, _ = _race(tmp_path / "run", screen=3, fn=_all_wrong)

    assert [f.status for f in raced] == ["done"] * len(SEEDS)  # all at 0: nobody is cut
    tokens = {f.spec.name: f.cost_tokens for f in raced}
    assert tokens["fewshot"] != tokens["tgd"]  # unequal costs, equal evidence: both went on
    (race,) = store.events("race")
    assert all(g["promoted"] for g in race.payload["graphs"]) and race.payload["screen"] == 8


def _demos_help_a_little(messages, request=None) -> str:
    """Programs shown demos answer half the train lists right (so the inner loop keeps the demos
    at its first step) and a quarter of the validation lists; the rest always answer wrong."""
    reply = _all_wrong(messages, request)
    words = messages[-1]["content"].split("List:", 1)[-1].split()
    letters = sum(map(len, words))
    train = messages[-1]["content"] in {ex.input for ex in _task().train}
    if reply == "wrong" and any(m["role"] == "assistant" for m in messages) and letters % (2 if train else 4) == 0:
        return " ".join(sorted(words))
    return reply


def _demos_make_targets_likely(messages, target) -> float:
    """Every program answers wrong, but one shown demos finds the target far likelier."""
    return -1.0 if any(m["role"] == "assistant" for m in messages) else -6.0


def test_a_likelihood_race_tells_apart_what_exact_match_cannot(tmp_path):
    """fewshot's screen is right on a quarter of the examples, the others on none: on 8
    examples a sign test cannot call that (2 wins, p = 0.25), so a metric race sends every graph
    on; racing by the likelihood of the targets cuts the three without demos at a screen of 6."""
    by_metric, _, _, _ = _race(tmp_path / "metric", fn=_demos_help_a_little, logprob=_demos_make_targets_likely)
    raced, store, _, _ = _race(tmp_path / "dense", fn=_demos_help_a_little, logprob=_demos_make_targets_likely,
                               screen_by="likelihood")

    assert [f.status for f in by_metric] == ["done"] * len(SEEDS)
    status = {f.spec.name: f.status for f in raced}
    assert status == {"tgd": "screened", "tgd_select": "screened", "opro": "screened", "fewshot": "done"}
    (race,) = store.events("race")
    assert race.payload["by"] == "likelihood" and race.payload["screen"] == 6
    # The result is still the metric's, and the same as the metric race's.
    assert [f.val_score for f in raced if f.spec.name == "fewshot"] == [f.val_score for f in by_metric if f.spec.name == "fewshot"] == [0.375]


def test_a_likelihood_race_falls_back_to_the_metric_when_the_model_cannot_score(tmp_path):
    raced, store, _, _ = _race(tmp_path / "run", fn=_all_wrong, screen_by="likelihood")
    assert [f.status for f in raced] == ["done"] * len(SEEDS)
    assert store.events("race")[0].payload["by"] == "metric"


def test_a_screened_graph_is_never_the_winner_and_keeps_its_outcome_on_resume(tmp_path):
    raced, store, _, _ = _race(tmp_path / "run")
    assert store.best().evaluation.status == "done"
    again, _, fake, _ = _race(tmp_path / "run")
    assert fake.calls == 0  # finished and screened graphs come from the store
    assert [f.status for f in again] == [f.status for f in raced]


def test_the_same_graph_twice_in_a_race_is_evaluated_once(tmp_path):
    raced, store, _, _ = _race(tmp_path / "run", seeds=("tgd", "fewshot", "tgd"))
    assert raced[0].candidate_id == raced[2].candidate_id and raced[0].status == raced[2].status
    assert len(store.candidates()) == 2


def test_a_one_step_inner_loop_is_not_raced(tmp_path):
    raced, store, _, _ = _race(tmp_path / "run", preset="tiny", inner_steps=1, screen=4)
    assert [f.status for f in raced] == ["done"] * len(SEEDS) and store.events("race") == []


def test_screens_draw_their_examples_per_race_seeded(tmp_path):
    _, _, _, evaluator = _race(tmp_path / "run", seeds=("tgd",), val_limit=10)
    first, again, other = evaluator.racer.race_examples("seeds"), evaluator.racer.race_examples("seeds"), evaluator.racer.race_examples("gen1")
    assert first == again and first != other and sorted(first) == sorted(other)
    in_file_order = [ex.id for ex in _task().val[:3]]
    assert first[:3] != in_file_order and other[:3] != in_file_order  # drawn, not the first examples of the file


def test_the_report_says_which_graphs_were_screened_out(tmp_path):
    from graphopt.viz.report import build_report

    raced, store, _, _ = _race(tmp_path / "run")
    page = build_report(store)
    screened = [f for f in raced if f.status == "screened"]
    assert screened and "1 screened out" in page
    for f in screened:
        assert f"screened {f.val_score:.3f}" in page


def test_the_dry_run_estimate_is_an_upper_bound_a_race_cannot_exceed():
    from graphopt.cli import main
    from graphopt.search.budgets import estimate

    raced, plain = get_budget("small"), get_budget("small", screen=0)
    # A race may cut nothing (graphs that do not differ all go on): the upper estimate is the unraced one.
    assert estimate(raced, prompt_tokens=80)["program"]["calls"] == estimate(plain, prompt_tokens=80)["program"]["calls"]
    assert main(["search", "--task", "word_sorting", "--budget", "small", "--screen", "0", "--dry-run"]) == 0
    assert main(["search", "--task", "word_sorting", "--screen", "-1", "--dry-run"]) == 2


# -- simulated races: Bernoulli outcomes, the policy alone ------------------------------------


def _simulate(rates: list[float], screen: int, val: int, trials: int, seed: int = 0) -> list[int]:
    """How often each graph survives a race (over `trials` draws of per-example outcomes)."""
    rng = random.Random(seed)
    race = Race(promote=0.5)
    sizes = screen_sizes(screen, val)
    survived = [0] * len(rates)
    for _ in range(trials):
        outcomes = [[1.0 if rng.random() < p else 0.0 for _ in range(val)] for p in rates]
        for rung, size in enumerate(sizes):
            scores = {str(g): {str(k): outcomes[g][k] for k in range(size)} for g in range(len(rates))}
            decision = race.decide(scores, can_grow=rung + 1 < len(sizes))
            if not decision.grow:
                break
        for g in range(len(rates)):
            survived[g] += str(g) in decision.go_on
    return survived


def test_a_25_percent_graph_survives_tiny_and_small_races_against_zero_graphs():
    for name in ("tiny", "small"):
        preset = PRESETS[name]
        n = len(preset.seeds)
        survived = _simulate([0.0] * (n - 1) + [0.25], preset.screen or 4, preset.val_limit, trials=2000)
        assert survived[-1] >= 0.95 * 2000, (name, survived)


def test_equal_graphs_are_rarely_cut_and_clearly_worse_ones_mostly_are():
    trials = 2000
    equal = _simulate([0.3] * 4, PRESETS["small"].screen, PRESETS["small"].val_limit, trials, seed=1)
    # Each cut needs p <= 0.05 against the leader (the best of four draws): a few percent at most.
    assert min(equal) >= 0.85 * trials, equal
    unequal = _simulate([0.8, 0.1, 0.1, 0.1], PRESETS["small"].screen, PRESETS["small"].val_limit, trials, seed=2)
    # Successive halving keeps half: once two of the three weak graphs are shown worse the race
    # stops growing, so on average little more than one weak graph goes on.
    assert unequal[0] >= 0.99 * trials and sum(unequal[1:]) <= 1.2 * trials, unequal


def test_the_sign_test_matches_the_binomial_tail():
    a = {str(i): 1.0 for i in range(6)} | {"6": 0.0}
    b = {str(i): 0.0 for i in range(6)} | {"6": 1.0}
    result = sign_test(a, b)
    assert (result.wins, result.losses, result.n) == (6, 1, 7)
    assert math.isclose(result.p, (math.comb(7, 6) + 1) / 2**7)
    assert sign_test(b, a).p > 0.9 and not sign_test({"x": 1.0}, {"x": 1.0}).better()
