"""select: the top k candidates by minibatch score under the program model."""

from __future__ import annotations

import asyncio
from typing import Any

from graphopt.lm import LM, LMConfig

from graphopt.testing import FakeModel
from graphopt.operators import StepContext, get_operator
from graphopt.tasks.base import Task
from graphopt.types import Example
from graphopt.program import Program

# The fake program model answers right on as many examples as the digit in the instruction.
GOOD = Program(instruction="Level 4 instruction.")
OKAY = Program(instruction="Level 2 instruction.")
BAD = Program(instruction="Level 0 instruction.")
ALSO_OKAY = Program(instruction="Level 2 instruction, again.")


def reply(messages: list[dict[str, str]]) -> str:
    level = int(messages[0]["content"].split()[1])
    index = int(messages[-1]["content"])
    return f"t{index}" if index < level else "wrong"


def run(candidates: list[Program], **params: Any) -> tuple[list[Program], StepContext, FakeModel]:
    examples = [Example(id=f"e{i}", input=str(i), target=f"t{i}") for i in range(4)]
    task = Task(name="toy", train=examples, val=examples, test=examples, seed_program=BAD, extract=str.strip)
    fake = FakeModel(fn=reply)
    config = LMConfig().with_models(program="fake/program", optimizer="fake/optimizer")
    ctx = StepContext(lm=LM(config, transport=fake, cache_dir=None), task=task, minibatch=examples)
    out = asyncio.run(get_operator("select")("select", params).run(ctx, {"candidates": candidates}))
    return out["candidates"], ctx, fake


def test_select_keeps_the_best_on_the_minibatch_with_the_program_model_only() -> None:
    out, ctx, fake = run([BAD, GOOD, OKAY])
    assert out == [GOOD]
    assert ctx.scores == {BAD.id: 0.0, GOOD.id: 1.0, OKAY.id: 0.5}
    assert {r.model for r in fake.requests} == {"fake/program"}


def test_select_top_k_is_best_first_and_ties_keep_incoming_order() -> None:
    out, _, _ = run([BAD, ALSO_OKAY, OKAY, GOOD], k=3)
    assert out == [GOOD, ALSO_OKAY, OKAY]


def test_select_scores_each_distinct_program_once() -> None:
    _, _, fake = run([OKAY, BAD, OKAY, BAD])
    assert fake.calls == 2 * 4


def test_select_with_nothing_to_choose_makes_no_call() -> None:
    out, _, fake = run([OKAY, OKAY])
    assert out == [OKAY] and fake.calls == 0
    assert run([])[0] == []


def test_ties_last_prefers_the_newest_candidate():
    import asyncio

    from graphopt.lm import LM

    from graphopt.testing import FakeModel
    from graphopt.operators.base import StepContext
    from graphopt.operators.select import Select
    from graphopt.tasks.base import Task
    from graphopt.types import Example
    from graphopt.program import Program

    examples = [Example(id=str(i), input=f"q{i}", target="x") for i in range(3)]
    task = Task("t", examples, examples, examples, Program(instruction="seed"), extract=str.strip)
    lm = LM(transport=FakeModel(default="wrong"), cache_dir=None)
    old, new = Program(instruction="old program"), Program(instruction="new program")
    for ties, winner in (("first", old), ("last", new)):
        ctx = StepContext(lm=lm, task=task, minibatch=examples)
        out = asyncio.run(Select("s", {"ties": ties}).run(ctx, {"candidates": [old, new]}))
        assert out["candidates"] == [winner]


def test_scores_on_other_examples_do_not_take_the_place_of_minibatch_scores() -> None:
    from graphopt.lm import LM, LMConfig
    from graphopt.operators import StepContext
    from graphopt.program import Program
    from graphopt.tasks.base import Task
    from graphopt.testing import FakeModel

    examples = [Example(id=f"e{i}", input=f"q{i}", target="yes" if i < 2 else "no") for i in range(4)]
    task = Task(name="t", train=examples, val=examples, test=examples, seed_program=Program(instruction="x"), extract=str.strip)
    ctx = StepContext(lm=LM(LMConfig(), transport=FakeModel(default="yes"), cache_dir=None), task=task, minibatch=examples[:2])
    program = task.seed_program
    assert asyncio.run(ctx.score([program], examples[2:]))[program.id] == 0.0
    assert asyncio.run(ctx.score([program]))[program.id] == 1.0
