"""Budgets: caps on calls, tokens and dollars stop work before a call, keeping what was done."""

import asyncio

import pytest

from graphopt.errors import BudgetExceeded
from graphopt.lm import LM, Budget, Caps, LevelConfig, LMConfig
from graphopt.testing import FakeModel
from graphopt.program import evaluate
from graphopt.tasks.base import Task
from graphopt.types import Example
from graphopt.program import Program


def _msg(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"question {i}"}]  # 2 prompt words


async def _run_until_stopped(lm: LM, n: int, level: str = "program") -> int:
    done = 0
    for i in range(n):
        try:
            await lm.complete(level, _msg(i))
        except BudgetExceeded:
            break
        done += 1
    return done


def _at_once(concurrency: int, budget: Budget, messages: list[list[dict[str, str]]]) -> tuple[FakeModel, LM, list]:
    """All `messages` sent at once to a fake (4 tokens a call for `_msg`, $0.001 a token) under `budget`:
    the fake, the client and each call's answer or BudgetExceeded."""
    fake = FakeModel(default="a b", latency=0.01, cost_per_token=0.001)
    config = LMConfig(program=LevelConfig(model="fake/m", concurrency=concurrency))
    lm = LM(config, transport=fake, budget=budget, cache_dir=None)

    async def main():
        return await asyncio.gather(*(lm.complete("program", m) for m in messages), return_exceptions=True)

    return fake, lm, asyncio.run(main())


def test_run_call_cap_stops_before_the_next_call_and_keeps_the_work(tmp_path):
    fake = FakeModel(default="a b")
    lm = LM(transport=fake, budget=Budget(total=Caps(calls=3)), cache_dir=tmp_path)
    assert asyncio.run(_run_until_stopped(lm, 5)) == 3
    assert fake.calls == 3
    assert lm.ledger.total().calls == 3
    with pytest.raises(BudgetExceeded, match="run cap of 3 calls"):
        asyncio.run(lm.complete("program", _msg(99)))
    # Answers already paid for are still served under the exhausted budget.
    assert asyncio.run(lm.complete("program", _msg(0))).cached
    # And a new client on the same cache replays them for free.
    again = FakeModel(default="a b")
    assert asyncio.run(_run_until_stopped(LM(transport=again, cache_dir=tmp_path), 3)) == 3
    assert again.calls == 0


def test_call_cap_holds_under_concurrency():
    fake, _, results = _at_once(8, Budget(total=Caps(calls=5)), [_msg(i) for i in range(20)])
    assert fake.calls == 5
    assert sum(isinstance(r, BudgetExceeded) for r in results) == 15


def test_level_cap_stops_only_that_level():
    fake = FakeModel(default="x")
    lm = LM(transport=fake, budget=Budget(levels={"program": Caps(calls=2)}), cache_dir=None)
    assert asyncio.run(_run_until_stopped(lm, 5, "program")) == 2
    with pytest.raises(BudgetExceeded, match="program cap of 2 calls"):
        asyncio.run(lm.complete("program", _msg(50)))
    assert asyncio.run(_run_until_stopped(lm, 3, "optimizer")) == 3
    assert lm.ledger.level("program").calls == 2
    assert lm.ledger.level("optimizer").calls == 3


def test_token_cap_stops_once_reached():
    fake = FakeModel(default="a b")  # 4 tokens per call
    lm = LM(transport=fake, budget=Budget(total=Caps(tokens=10)), cache_dir=None)
    assert asyncio.run(_run_until_stopped(lm, 10)) == 3  # 0, 4, 8 < 10 start; 12 stops
    assert lm.ledger.total().tokens == 12


def test_level_token_cap():
    fake = FakeModel(default="a b")
    lm = LM(transport=fake, budget=Budget(levels={"meta": Caps(tokens=4)}), cache_dir=None)
    assert asyncio.run(_run_until_stopped(lm, 5, "meta")) == 1
    assert asyncio.run(_run_until_stopped(lm, 2, "program")) == 2


def test_dollar_cap_uses_the_reported_cost():
    fake = FakeModel(default="a b", cost_per_token=0.01)  # $0.04 per call
    lm = LM(transport=fake, budget=Budget(total=Caps(dollars=0.1)), cache_dir=None)
    assert asyncio.run(_run_until_stopped(lm, 10)) == 3
    assert lm.ledger.total().cost == pytest.approx(0.12)
    with pytest.raises(BudgetExceeded, match=r"\$0.1"):
        asyncio.run(lm.complete("program", _msg(77)))


def test_with_budget_keeps_ledger_and_cache(tmp_path):
    fake = FakeModel(default="x")
    lm = LM(transport=fake, cache_dir=tmp_path)
    asyncio.run(_run_until_stopped(lm, 2))
    lm.with_budget(Budget(total=Caps(calls=3)))
    assert asyncio.run(_run_until_stopped(lm, 5)) == 3  # 2 cached + 1 new call
    assert fake.calls == 3


def _task(n: int) -> Task:
    examples = [Example(id=str(i), input=f"item {i}", target=f"item {i}") for i in range(n)]
    return Task(
        name="echo",
        train=examples[:1],
        val=examples,
        test=examples[:1],
        seed_program=Program(instruction="Repeat the input."),
        extract=lambda text: text.strip(),
    )


def test_evaluate_on_a_budget_stops_cleanly_and_a_rerun_pays_only_the_rest(tmp_path):
    task = _task(10)
    echo = lambda messages: messages[-1]["content"]  # noqa: E731
    config = LMConfig(program=LevelConfig(model="fake/m", concurrency=2))
    fake = FakeModel(fn=echo)
    lm = LM(config, transport=fake, budget=Budget(levels={"program": Caps(calls=4)}), cache_dir=tmp_path)
    with pytest.raises(BudgetExceeded):
        asyncio.run(evaluate(task.seed_program, task.val, task, lm))
    assert fake.calls == 4
    assert lm.ledger.level("program").calls == 4

    rerun_fake = FakeModel(fn=echo)
    rerun = LM(config, transport=rerun_fake, cache_dir=tmp_path)
    result = asyncio.run(evaluate(task.seed_program, task.val, task, rerun))
    assert rerun_fake.calls == 6
    assert rerun.ledger.level("program").cache_hits == 4
    assert result.accuracy == 1.0


def test_token_cap_holds_for_calls_queued_behind_the_concurrency_limit():
    fake, lm, results = _at_once(2, Budget(levels={"program": Caps(tokens=10)}), [_msg(i) for i in range(20)])
    # Two go out (their prompts expected at 2 tokens each), a third once 8 are spent, then the
    # cap (8 + 4 expected of the one in flight): 12 tokens, not 16 (in flight uncounted) or 80.
    assert fake.calls == 3
    assert lm.ledger.level("program").tokens == 12
    assert sum(isinstance(r, BudgetExceeded) for r in results) == 17


def _long(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": "word " * 19 + f"end{i}"}]  # 20 words, 99 characters: 24 tokens expected


@pytest.mark.parametrize("cap", [Budget(total=Caps(tokens=200)), Budget(levels={"program": Caps(tokens=200)}),
                                 Budget(total=Caps(dollars=0.2))])
def test_calls_in_flight_pass_a_token_or_dollar_cap_by_about_one_call_not_a_wave(cap):
    fake, lm, results = _at_once(8, cap, [_long(i) for i in range(50)])  # 22 tokens and $0.022 a call
    # Counting only what was answered, every call in flight near the cap went on (a wave of 8:
    # up to 8 calls past it); each in flight now counts at what it is expected to spend.
    assert lm.ledger.level("program").tokens <= 200 + 22
    assert fake.calls >= 9  # and the cap is still used, not stopped a wave early
    assert sum(isinstance(r, BudgetExceeded) for r in results) == 50 - fake.calls


def test_a_first_wave_counts_its_prompts_before_any_call_is_answered():
    fake, lm, results = _at_once(8, Budget(levels={"program": Caps(tokens=30)}), [_long(i) for i in range(8)])
    # Nothing answered yet, so only the prompts tell: 0 + 24 < 30 lets a second call go, not a third
    # (counting only answered calls, all 8 went out: 176 tokens against a cap of 30).
    assert fake.calls == 2
    assert sum(isinstance(r, BudgetExceeded) for r in results) == 6
