"""ensemble: union of branches, or one program combining them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from graphopt.lm import LM, LMConfig

from graphopt.testing import FakeModel
from graphopt.operators import StepContext, get_operator
from graphopt.tasks.base import Task
from graphopt.program import Demo, Program
from graphopt.types import Example

A = Program(instruction="Sort the words.", demos=(Demo(input="b a", output="a b"),))
B = Program(instruction="Order the words alphabetically.")
C = Program(instruction="List the words from A to Z.")


def run(fake: FakeModel, candidates: list[Program], **params: Any) -> tuple[list[Program], StepContext]:
    examples = [Example(id="e0", input="x", target="y")]
    task = Task(name="toy", train=examples, val=examples, test=examples, seed_program=A, extract=str.strip)
    ctx = StepContext(lm=LM(LMConfig(), transport=fake, cache_dir=None), task=task, minibatch=examples)
    out = asyncio.run(get_operator("ensemble")("ensemble", params).run(ctx, {"candidates": candidates}))
    return out["candidates"], ctx


def test_union_removes_repeats_keeps_order_and_calls_no_model() -> None:
    fake = FakeModel()
    out, _ = run(fake, [A, B, A, C, B])
    assert out == [A, B, C] and fake.calls == 0


def test_union_limit_keeps_the_first() -> None:
    out, _ = run(FakeModel(), [A, B, C], limit=2)
    assert out == [A, B]


def test_combine_asks_once_and_returns_one_program_built_on_the_first() -> None:
    fake = FakeModel(default=json.dumps({"instruction": "Sort the words alphabetically, A to Z."}))
    out, _ = run(fake, [A, B, C], mode="combine")
    assert [p.instruction for p in out] == ["Sort the words alphabetically, A to Z."]
    assert out[0].demos == A.demos
    prompt = fake.requests[0].messages[-1]["content"]
    assert all(p.instruction in prompt for p in (A, B, C))


def test_combine_falls_back_to_the_union_when_the_reply_is_unusable() -> None:
    out, ctx = run(FakeModel(default="{}"), [A, B], mode="combine")
    assert out == [A, B]
    assert ctx.dropped[0].node == "ensemble" and ctx.dropped[0].reason.startswith("unparseable")


def test_combine_of_a_single_program_makes_no_call() -> None:
    fake = FakeModel()
    out, _ = run(fake, [A, A], mode="combine")
    assert out == [A] and fake.calls == 0


def test_combine_mode_makes_the_node_an_llm_node() -> None:
    cls = get_operator("ensemble")
    assert cls("e").kind == "merge" and cls("e", {"mode": "combine"}).kind == "llm"
