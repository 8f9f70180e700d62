"""critique: feedback on a program's minibatch failures."""

from __future__ import annotations

import asyncio
from typing import Any

from graphopt.lm import LM, LMConfig

from graphopt.testing import FakeModel
from graphopt.operators import StepContext, get_operator
from graphopt.tasks.base import Task
from graphopt.types import Example, Trace
from graphopt.program import Program

PROGRAM = Program(instruction="Sort the words.", output_format="Answer on one line.")


def toy_task() -> Task:
    examples = [Example(id=f"e{i}", input=f"words {i}", target=f"sorted {i}") for i in range(6)]
    return Task(name="toy", train=examples, val=examples[:2], test=examples[:2], seed_program=PROGRAM, extract=str.strip)


def make_ctx(fake: FakeModel) -> StepContext:
    task = toy_task()
    config = LMConfig(max_retries=0).with_models(program="fake/program", optimizer="fake/optimizer")
    return StepContext(lm=LM(config, transport=fake, cache_dir=None), task=task, minibatch=task.train[:4])


def traces(correct: list[bool]) -> list[Trace]:
    task = toy_task()
    return [
        Trace(example=ex, output=ex.target if ok else "wrong output", answer=ex.target if ok else "wrong",
              score=float(ok))
        for ex, ok in zip(task.train, correct)
    ]


def critique(ctx: StepContext, inputs: dict[str, Any], **params: Any) -> list:
    return asyncio.run(get_operator("critique")("critique", params).run(ctx, inputs))["feedback"]


def test_critique_shows_the_program_and_failing_traces_and_ties_feedback_to_the_candidate() -> None:
    fake = FakeModel(default="Say that words must be sorted alphabetically.")
    feedback = critique(make_ctx(fake), {"candidates": [PROGRAM], "traces": traces([False, True, False, True])})
    assert [(f.program_id, f.text) for f in feedback] == [(PROGRAM.id, "Say that words must be sorted alphabetically.")]
    prompt = fake.requests[0].messages[-1]["content"]
    assert "Sort the words." in prompt and "Answer on one line." in prompt
    assert "Expected answer: sorted 0" in prompt and "Model output: wrong output" in prompt
    assert "answered 2 correctly" in prompt
    assert fake.requests[0].model == "fake/optimizer"


def test_critique_limits_the_failures_shown() -> None:
    fake = FakeModel(default="advice")
    critique(make_ctx(fake), {"candidates": [PROGRAM], "traces": traces([False] * 4)}, max_failures=2)
    prompt = fake.requests[0].messages[-1]["content"]
    assert "Expected answer: sorted 1" in prompt and "Expected answer: sorted 2" not in prompt


def test_critique_of_a_program_with_no_failure_costs_no_call() -> None:
    fake = FakeModel(default="advice")
    assert critique(make_ctx(fake), {"candidates": [PROGRAM], "traces": traces([True] * 4)}) == []
    assert fake.calls == 0


def test_critique_without_traces_runs_the_candidate_on_the_minibatch_first() -> None:
    def reply(messages: list[dict[str, str]], request: Any) -> str:
        return "nonsense" if request.model == "fake/program" else "be precise"

    ctx = make_ctx(FakeModel(fn=reply))
    feedback = critique(ctx, {"candidates": [PROGRAM]})
    assert [f.text for f in feedback] == ["be precise"]
    assert ctx.scores[PROGRAM.id] == 0.0
    assert [r.model for r in ctx.lm.transport.requests].count("fake/program") == 4


def test_critique_of_several_candidates_gives_one_feedback_each() -> None:
    other = Program(instruction="List the words in order.")
    ctx = make_ctx(FakeModel(fn=lambda messages, request: "bad" if request.model == "fake/program" else "fix it"))
    feedback = critique(ctx, {"candidates": [PROGRAM, other], "traces": traces([False] * 4)}, max_candidates=2)
    assert [f.program_id for f in feedback] == [PROGRAM.id, other.id]


def test_a_failed_critique_call_is_dropped_with_its_reason() -> None:
    def broken(messages: list[dict[str, str]]) -> str:
        raise RuntimeError("provider exploded")

    ctx = make_ctx(FakeModel(fn=broken))
    assert critique(ctx, {"candidates": [PROGRAM], "traces": traces([False] * 4)}) == []
    assert ctx.dropped[0].node == "critique" and "provider exploded" in ctx.dropped[0].reason
