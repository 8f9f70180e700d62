"""Likelihood fitness: the log-probability of the target under a program, as a dense score."""

from __future__ import annotations

import asyncio

import pytest

from graphopt.errors import ConfigError
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.lm.transport import LiteLLMTransport
from graphopt.lm.wire import Request
from graphopt.operators import StepContext, get_operator
from graphopt.tasks.base import Task
from graphopt.types import Example
from graphopt.program import Program

MINIBATCH = [Example(id=f"e{i}", input=f"q{i}", target="yes") for i in range(3)]


def ctx_with(fake: FakeModel) -> StepContext:
    task = Task(name="toy", train=MINIBATCH, val=MINIBATCH, test=MINIBATCH, seed_program=Program(instruction="x"),
                extract=str.strip)
    return StepContext(lm=LM(LMConfig(), transport=fake, cache_dir=None), task=task, minibatch=MINIBATCH)


def closeness(messages, target) -> float:
    """Programs whose instruction says more "yes" make the target likelier; none is ever exactly right."""
    return -5.0 + messages[0]["content"].count("yes")


def test_select_by_likelihood_ranks_programs_exact_match_cannot_tell_apart() -> None:
    programs = [Program(instruction=f"Answer{' yes' * n}.") for n in (0, 2, 1)]
    fake = FakeModel(default="no", logprob=closeness)
    select = get_operator("select")("select", {"k": 1, "by": "likelihood"})
    ctx = ctx_with(fake)
    out = asyncio.run(select.run(ctx, {"candidates": programs}))["candidates"]
    assert out == [programs[1]] and ctx.likelihoods[programs[1].id] == -3.0
    by_metric = asyncio.run(get_operator("select")("select", {"k": 1}).run(ctx_with(fake), {"candidates": programs}))
    assert by_metric["candidates"] == [programs[0]]  # all score 0: the first wins the tie


def test_programs_of_several_calls_fall_back_to_the_metric() -> None:
    lead = Program(instruction="Answer yes.")
    vote = lead.model_copy(update={"vote": (Program(instruction="b"),)})
    fake = FakeModel(by_substring={"Answer yes.": "yes"}, default="no", logprob=closeness)
    ctx = ctx_with(fake)
    out = asyncio.run(get_operator("select")("select", {"k": 1, "by": "likelihood"}).run(
        ctx, {"candidates": [Program(instruction="plain"), vote]}))["candidates"]
    assert ctx.likelihoods == {} and out == [vote]  # the vote (lead says yes, tie to the lead) wins on the metric


def test_a_model_that_cannot_score_answers_is_a_config_error_not_a_retry() -> None:
    with pytest.raises(ConfigError, match="embedded model"):
        asyncio.run(LiteLLMTransport().send(Request(model="openai/gpt-4o-mini", messages=[], score_target="x")))


def test_scored_answers_have_their_own_cache_key() -> None:
    plain = Request(model="local/smollm2", messages=[{"role": "user", "content": "q"}])
    scored = Request(model="local/smollm2", messages=[{"role": "user", "content": "q"}], score_target="yes")
    assert "score_target" not in plain.cache_fields() and scored.cache_fields()["score_target"] == "yes"


@pytest.mark.integration
def test_the_embedded_model_scores_its_own_greedy_answer_above_another_and_generation_is_unchanged(local_lm) -> None:
    messages = [{"role": "user", "content": "What is the capital of France? Answer with one word."}]

    async def run():
        before = (await local_lm.complete("program", messages, max_tokens=6)).text
        own = await local_lm.logprob("program", messages, before)
        other = await local_lm.logprob("program", messages, "Banana")
        after = (await local_lm.complete("program", messages + [{"role": "user", "content": "again"}], max_tokens=6)).text
        again = (await local_lm.complete("program", messages, max_tokens=6)).text
        return before, own, other, after, again

    before, own, other, _, again = asyncio.run(run())
    assert own > other and own > -3.0 and other < own - 2.0
    assert again == before


@pytest.mark.integration
def test_an_interrupt_ends_a_local_generation_at_its_next_token(local_lm) -> None:
    from graphopt.lm.local import INTERRUPTED, complete_local

    messages = [{"role": "user", "content": "Write a long story about a cat."}]
    INTERRUPTED.set()
    try:
        raw = complete_local("smollm2", messages, {"temperature": 0, "max_tokens": 200})
    finally:
        INTERRUPTED.clear()
    assert raw["usage"]["completion_tokens"] <= 1
    again = complete_local("smollm2", messages, {"temperature": 0, "max_tokens": 20})
    assert again["usage"]["completion_tokens"] == 20  # cleared: generation runs as before
