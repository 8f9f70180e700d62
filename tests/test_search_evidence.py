"""What the search records is true: sampled runs repeat, meta calls are charged to what they made,
a bug in graphopt is a bug (not a rejected graph), a budget stop in a user pipeline is partial,
a seed given twice is one seed, and the winner's choice follows `policy.choose_winner`."""

from __future__ import annotations

import asyncio
import json
import operator
import random

import pytest
from search_fakes import scripted

from graphopt.errors import GraphoptError, InternalError, is_bug
from graphopt.graph.canonical import canonical_hash
from graphopt.graph.io import load_graph
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.lm.wire import Request, Response
from graphopt.search.budgets import get_budget
from graphopt.search.executor import LocalExecutor
from graphopt.search.pipeline import run_search
from graphopt.search.policy import Entry, choose_winner
from graphopt.store import RunStore
from graphopt.tasks import get_task

INSTRUCTIONS = ["Sort the words.", "Sort the words carefully in alphabetical order.", "List them.", "Order words carefully."]


def _sampling(messages, request) -> str:
    """A model that samples: the optimizer's rewrite draws its instruction from the request's seed."""
    if '"instruction"' in messages[-1]["content"] and request.temperature > 0:
        return json.dumps({"instruction": random.Random(request.seed).choice(INSTRUCTIONS)})
    return scripted(messages, request)


class Jitter(FakeModel):
    def __init__(self, fn, seed: int):
        super().__init__(fn=fn)
        self.jitter = random.Random(seed)

    async def send(self, request: Request) -> Response:
        await asyncio.sleep(self.jitter.random() * 0.004)
        return await super().send(request)


def _task():
    return get_task("word_sorting", difficulty="easy", sizes=(12, 20, 6), seed=3)


def _run(run_dir, fake, *, parallel=2, seeds=("tgd", "tgd_select"), **budget):
    task = _task()
    config = LMConfig(cache_dir=None).with_models(program="fake/p", optimizer="fake/o", meta="fake/m")
    config = config.model_copy(update={"optimizer": config.optimizer.model_copy(update={"temperature": 0.8, "seed": 11})})
    plan = get_budget("tiny", **{"val_limit": 8, "test_limit": 4, "minibatch": 3, "generations": 2, "children": 3, **budget})
    lm = LM(config, transport=fake, budget=plan.lm_budget())
    graphs = [load_graph(name) for name in seeds]
    return asyncio.run(run_search(task, lm, plan, run_dir, graphs, executor=LocalExecutor(task, lm, parallel)))


def _contents(run_dir) -> list[tuple]:
    with RunStore.open(run_dir, create=False) as store:
        return [
            (c.id, c.graph_hash, c.parents, c.origin, c.evaluation.status, c.evaluation.val_score,
             (c.evaluation.program or {}).get("instruction"))
            for c in store.candidates()
        ]


def test_a_sampling_model_gives_the_same_store_at_any_parallelism(tmp_path):
    one = _run(tmp_path / "p1", Jitter(_sampling, 1), parallel=1)
    four = _run(tmp_path / "p4", Jitter(_sampling, 2), parallel=4)
    first, second = _contents(tmp_path / "p1"), _contents(tmp_path / "p4")
    assert first == second and one.best.candidate_id == four.best.candidate_id
    # The samples really vary (not one answer for every call): several instructions were written.
    assert len({row[-1] for row in first}) >= 2


def test_meta_calls_are_charged_to_the_candidates_they_made(tmp_path):
    _run(tmp_path / "run", FakeModel(fn=scripted), seeds=("tgd",), prompt_iterations=1, llm_share=1.0, crossover_share=0.0,
         generations=1, children=1)
    with RunStore.open(tmp_path / "run", create=False) as store:
        made = [c for c in store.candidates() if c.origin in ("prompt_opt", "llm") and c.evaluation.status in ("done", "screened")]
        seeds = [c for c in store.candidates() if c.origin == "seed"]
    assert made and all(c.evaluation.meta_tokens > 0 for c in made)
    assert all(not c.evaluation.meta_tokens for c in seeds)


def test_a_bug_in_graphopt_stops_the_search_with_its_traceback_in_the_run_log(tmp_path, monkeypatch):
    import graphopt.operators.critique as critique

    # A C function raising inside the critique operator: the innermost Python frame is graphopt's.
    monkeypatch.setattr(critique, "format_traces", operator.itemgetter("no such key"))
    with pytest.raises(InternalError) as caught:
        _run(tmp_path / "run", FakeModel(fn=scripted), seeds=("tgd",))
    assert "a bug in graphopt" in str(caught.value) and "run.log" in str(caught.value) and "--resume" in str(caught.value)
    log = (tmp_path / "run" / "run.log").read_text()
    assert "Traceback" in log and "critique" in log
    with RunStore.open(tmp_path / "run", create=False) as store:
        assert store.events("bug") and not store.events("evaluation_failed")


def test_is_bug_tells_graphopt_code_from_user_code():
    with pytest.raises(KeyError) as user:
        {}["x"]
    assert not is_bug(user.value)  # raised in this test file: the user's code
    with pytest.raises(GraphoptError) as on_purpose:
        get_budget("tiny", val_limit="many")
    assert not is_bug(on_purpose.value)  # a GraphoptError: raised on purpose
    with pytest.raises(AttributeError) as bug:
        canonical_hash(None)  # a plain exception from inside graphopt's own code
    assert is_bug(bug.value)


def test_a_seed_graph_given_twice_is_one_seed(tmp_path):
    _run(tmp_path / "run", FakeModel(fn=scripted), seeds=("tgd", "tgd_select", "tgd"), generations=0, prompt_iterations=0)
    with RunStore.open(tmp_path / "run", create=False) as store:
        assert [c.name for c in store.candidates()] == ["tgd", "tgd_select"]


def _entry(name, scores, *, seed, changed=True, nodes=2, order=0, confirm=None):
    return Entry(name, name, {str(i): s for i, s in enumerate(scores)}, seed, changed, nodes, order, confirm)


def test_the_winner_is_the_best_seed_unless_a_derived_graph_beats_it_by_a_paired_test():
    fewshot = _entry("fewshot", [1, 1, 0, 0, 0, 0, 0, 0], seed=True, order=2)
    tgd = _entry("tgd", [0] * 8, seed=True, changed=False, order=0)
    noop = _entry("fewshot+delete", [1, 1, 0, 0, 0, 0, 0, 0], seed=False, nodes=1, order=5)
    slightly = _entry("child", [1, 1, 1, 0, 0, 0, 0, 0], seed=False, order=6)
    assert choose_winner([tgd, fewshot, noop, slightly]).winner.name == "fewshot"  # +1 example: noise
    clearly = _entry("clear", [1, 1, 1, 1, 1, 1, 1, 0], seed=False, order=7)
    choice = choose_winner([tgd, fewshot, noop, clearly])
    assert choice.winner.name == "clear" and "paired test" in choice.reason and "p=0.0312" in choice.reason


def test_among_equal_seeds_a_changed_program_wins_and_a_challenger_that_fails_held_out_loses():
    tgd = _entry("tgd", [0] * 6, seed=True, changed=False, nodes=2, order=0)
    fewshot = _entry("fewshot", [0] * 6, seed=True, changed=True, nodes=2, order=2, confirm={"h": 1.0})
    assert choose_winner([tgd, fewshot]).winner.name == "fewshot"
    cursed = _entry("lucky", [1] * 6, seed=False, order=3, confirm={"h": 0.0})
    choice = choose_winner([tgd, fewshot, cursed])
    assert choice.winner.name == "fewshot" and "held-out" in choice.reason


def test_samples_are_numbered_by_place_so_order_and_resume_do_not_change_them():
    from graphopt.lm import sample_place

    config = LMConfig(cache_dir=None).with_models(optimizer="fake/o")
    config = config.model_copy(update={"optimizer": config.optimizer.model_copy(update={"temperature": 0.8, "seed": 11})})
    messages = [{"role": "user", "content": "write an instruction"}]

    def seeded(messages, request) -> str:
        return str(request.seed)

    async def work(lm, place, delay):
        with sample_place(place):
            await asyncio.sleep(delay)
            return [(await lm.complete("optimizer", messages)).text for _ in range(2)]

    async def both(first_delay, second_delay):
        lm = LM(config, transport=FakeModel(fn=seeded))
        return await asyncio.gather(work(lm, "cand-1", first_delay), work(lm, "cand-2", second_delay))

    a_first, b_first = asyncio.run(both(0.0, 0.02)), asyncio.run(both(0.02, 0.0))
    assert a_first == b_first  # which evaluation called first does not matter
    resumed = asyncio.run(work(LM(config, transport=FakeModel(fn=seeded)), "cand-2", 0.0))
    assert resumed == a_first[1]  # a new client (a resume) gives the same samples
    assert len({*a_first[0], *a_first[1]}) == 4  # and the samples differ from each other


def test_the_report_and_the_table_say_why_the_winner_won(tmp_path):
    from graphopt.viz.report import build_report

    report = _run(tmp_path / "run", FakeModel(fn=scripted), seeds=("tgd", "fewshot"), generations=1, children=2)
    best = next(r for r in report.rows if r.role == "best")
    # The scripted model scores every graph alike: no derived graph beats the best seed, and the row says so.
    assert best.why.startswith("best seed graph on validation (1.000); no derived graph beats it by a paired test")
    with RunStore.open(tmp_path / "run", create=False) as store:
        page = build_report(store)
    assert "Why it won: " in page and best.why.split(";")[0][:30] in page
    assert all("cached" in r.tokens for r in report.rows)  # cached tokens shown apart


def test_meta_investment_gives_first_tries_then_follows_the_gain_per_token():
    from graphopt.search.policy import MetaInvestment, Yield

    policy = MetaInvestment(first_tries=2)
    assert policy.allows(Yield(), Yield())[0]  # every search gives the meta model a try
    assert policy.allows(Yield(1, 0.0, 5000), Yield(3, 0.0, 9000))[0]
    assert not policy.allows(Yield(2, 0.0, 9000), Yield(3, 0.0, 9000))[0]  # two tries, nothing gained
    assert policy.allows(Yield(4, 0.5, 20_000), Yield(6, 0.0, 9000))[0]  # it gains, mutations do not
    assert not policy.allows(Yield(4, 0.1, 100_000), Yield(6, 0.5, 10_000))[0]  # mutations gain more per token


def test_a_held_out_confirmation_past_the_budget_leaves_the_choice_to_validation_instead_of_failing():
    from types import SimpleNamespace

    from graphopt.lm import Budget, Caps
    from graphopt.search import winner

    recorded = []
    task = get_task("word_sorting", difficulty="easy", seed=0, sizes=(4, 4, 4))
    spent = LM(LMConfig().with_models(program="fake/program"), transport=FakeModel(default="x"), cache_dir=None,
               budget=Budget(total=Caps(calls=0)))
    evaluator = SimpleNamespace(
        task=task, lm=spent,
        run=SimpleNamespace(store=SimpleNamespace(example_scores=lambda split, cid: {}),
                            set_example_scores=lambda *args: recorded.append(args)),
    )
    row = SimpleNamespace(id="c0002", evaluation=SimpleNamespace(program=None))
    asyncio.run(winner._confirm(evaluator, row, task.val))  # raised BudgetExceeded before
    assert recorded == [] and spent.ledger.level("program").calls == 0
