"""Provider errors in program runs and operators: fatal ones stop, others are counted, never scored silently."""

from __future__ import annotations

import asyncio

import pytest

from graphopt.errors import LLMError
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.operators.base import StepContext
from graphopt.operators.common import LLMParams, ask
from graphopt.program import error_tally, evaluate, run_program
from graphopt.tasks import get_task


def quick_lm(fn) -> LM:
    config = LMConfig(max_retries=1, backoff_base=0.001, backoff_max=0.001)
    return LM(config, transport=FakeModel(fn=fn), cache_dir=None)


@pytest.fixture
def task():
    return get_task("word_sorting", sizes=(10, 40, 10))


def test_an_invalid_key_stops_the_evaluation_at_once_and_names_the_fix(task):
    calls = []

    def refuse(messages):
        calls.append(1)
        raise LLMError("Incorrect API key provided", provider="openai", model="gpt-4o-mini", status=401)

    lm = quick_lm(refuse)
    with pytest.raises(LLMError) as info:
        asyncio.run(evaluate(task.seed_program, task.val, task, lm))
    assert info.value.fatal
    assert str(info.value) == (
        "model call to gpt-4o-mini (openai, status 401) failed: Incorrect API key provided; "
        "check OPENAI_API_KEY (or the api_key_env setting of the model's level)"
    )
    # Stopped at the first occurrence: only the calls already in flight were made, not all 40.
    assert len(calls) <= 2 * lm.config.level("program").concurrency < len(task.val)


@pytest.mark.parametrize(
    ("status", "fix"),
    [(403, "has no access to m1"), (404, "check the model name 'm1'"), (400, "shorten the prompt")],
)
def test_every_non_retryable_status_is_fatal_with_its_fix(status, fix):
    error = LLMError("no", provider="openai", model="m1", status=status)
    assert error.fatal and fix in str(error)


def test_retryable_errors_are_not_fatal_and_get_no_fix():
    error = LLMError("busy", provider="openai", model="m1", status=503, retryable=True)
    assert not error.fatal and error.fix == "" and str(error) == "model call to m1 (openai, status 503) failed: busy"


def test_errors_that_outlive_the_retries_are_kept_per_trace_and_counted(task):
    bad = {ex.input for ex in task.val[:4]}

    def flaky(messages):
        if any(text in messages[-1]["content"] for text in bad):
            raise LLMError("overloaded", provider="openai", model="m", status=503, retryable=True)
        return "x"

    result = asyncio.run(evaluate(task.seed_program, task.val, task, quick_lm(flaky)))
    assert (result.errors, len(result.traces)) == (4, 40)
    assert result.error_rate == pytest.approx(0.1)
    errored = [t for t in result.traces if t.error]
    assert {t.example.input for t in errored} == bad
    assert all(t.score == 0.0 and t.output == "" and "overloaded" in t.error for t in errored)
    assert result.first_error.endswith("failed: overloaded")
    data = result.to_dict()
    assert data["errors"] == 4 and sum(1 for t in data["traces"] if t["error"]) == 4


def test_an_error_tally_counts_every_run_inside_it(task):
    def half(messages):
        if "a" in messages[-1]["content"][-3:]:
            raise LLMError("timeout", provider="openai", model="m", retryable=True)
        return "x"

    lm = quick_lm(half)

    async def both():
        first = await run_program(task.seed_program, task.val[:10], task, lm)
        second = await run_program(task.seed_program, task.val[10:20], task, lm)
        return first + second

    with error_tally() as tally:
        traces = asyncio.run(both())
    assert tally.examples == 20
    assert tally.errors == sum(1 for t in traces if t.error)
    assert tally.error_rate == tally.errors / 20
    outside = asyncio.run(run_program(task.seed_program, task.val[:3], task, lm))
    assert tally.examples == 20 and len(outside) == 3  # closed tallies count nothing more


def test_an_operator_call_with_a_fatal_error_stops_the_step(task):
    def refuse(messages):
        raise LLMError("model 'gpt-5x' does not exist", provider="openai", model="gpt-5x", status=404)

    ctx = StepContext(lm=quick_lm(refuse), task=task, minibatch=task.train[:2])
    with pytest.raises(LLMError, match="check the model name 'gpt-5x'"):
        asyncio.run(ask(ctx, "rw", "improve this", LLMParams()))
    assert ctx.dropped == []


def test_an_operator_call_that_outlived_its_retries_is_dropped_with_the_reason(task):
    def busy(messages):
        raise LLMError("rate limited", provider="openai", model="m", status=429, retryable=True)

    ctx = StepContext(lm=quick_lm(busy), task=task, minibatch=task.train[:2])
    assert asyncio.run(ask(ctx, "rw", "improve this", LLMParams())) is None
    [dropped] = ctx.dropped
    assert dropped.node == "rw" and dropped.reason.startswith("model call failed: ") and "rate limited" in dropped.reason


def test_an_unexpected_provider_exception_is_counted_not_fatal(task):
    def broken(messages):
        raise RuntimeError("library bug")

    result = asyncio.run(evaluate(task.seed_program, task.val[:5], task, quick_lm(broken)))
    assert result.errors == 5 and "library bug" in result.first_error
