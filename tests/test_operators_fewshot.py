"""fewshot: demos from correct traces, topped up from train."""

from __future__ import annotations

import asyncio
from typing import Any

from graphopt.lm import LM, LMConfig

from graphopt.testing import FakeModel
from graphopt.operators import StepContext, get_operator
from graphopt.tasks.base import Task
from graphopt.types import Example, Trace
from graphopt.program import Program

PARENT = Program(instruction="Sort the words.")
TRAIN = [Example(id=f"e{i}", input=f"in {i}", target=f"target {i}") for i in range(8)]
MINIBATCH = TRAIN[:4]


def traces(correct: list[bool]) -> list[Trace]:
    return [
        Trace(example=ex, output=f"reasoning... {ex.target}" if ok else "bad", answer=ex.target if ok else "bad",
              score=float(ok))
        for ex, ok in zip(MINIBATCH, correct)
    ]


def run(inputs: dict[str, Any], step: int = 0, **params: Any) -> tuple[list[Program], StepContext, FakeModel]:
    task = Task(name="toy", train=TRAIN, val=TRAIN, test=TRAIN, seed_program=PARENT, extract=str.strip)
    fake = FakeModel()
    ctx = StepContext(lm=LM(LMConfig(), transport=fake, cache_dir=None), task=task, minibatch=MINIBATCH, step=step)
    out = asyncio.run(get_operator("fewshot")("fewshot", params).run(ctx, inputs))
    return out["candidates"], ctx, fake


def test_demos_are_bootstrapped_from_correct_traces_with_the_programs_own_output() -> None:
    [program], _, fake = run({"candidates": [PARENT], "traces": traces([True, True, True, False])})
    assert sorted(d.input for d in program.demos) == ["in 0", "in 1", "in 2"]
    assert all(d.output.startswith("reasoning... ") for d in program.demos)
    assert program.instruction == PARENT.instruction and fake.calls == 0


def test_too_few_correct_traces_are_topped_up_with_train_targets_outside_the_minibatch() -> None:
    [program], _, _ = run({"candidates": [PARENT], "traces": traces([True, False, False, False])})
    bootstrapped = [d for d in program.demos if d.output.startswith("reasoning")]
    from_train = [d for d in program.demos if not d.output.startswith("reasoning")]
    assert [d.input for d in bootstrapped] == ["in 0"]
    assert len(from_train) == 2
    assert all(d.input not in {ex.input for ex in MINIBATCH} and d.output.startswith("target") for d in from_train)


def test_k_variants_differ_and_are_reproducible_for_a_step() -> None:
    first, _, _ = run({"candidates": [PARENT]}, k=3, max_demos=2)
    again, _, _ = run({"candidates": [PARENT]}, k=3, max_demos=2)
    assert len({p.id for p in first}) == 3 and first == again


def test_no_demo_source_drops_with_a_reason() -> None:
    out, ctx, _ = run({"candidates": [PARENT], "traces": traces([False] * 4)}, source="traces")
    assert out == [] and "no demos available" in ctx.dropped[0].reason
