"""paraphrase: diverse rewordings by repeated sampling."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from graphopt.lm import LM, LMConfig

from graphopt.testing import FakeModel
from graphopt.operators import StepContext, get_operator
from graphopt.tasks.base import Task
from graphopt.types import Example
from graphopt.program import Program

PARENT = Program(instruction="Sort the words alphabetically.", output_format="One line.")


def run(fake: FakeModel, **params: Any) -> tuple[list[Program], StepContext]:
    examples = [Example(id="e0", input="x", target="y")]
    task = Task(name="toy", train=examples, val=examples, test=examples, seed_program=PARENT, extract=str.strip)
    ctx = StepContext(lm=LM(LMConfig(), transport=fake, cache_dir=None), task=task, minibatch=examples)
    out = asyncio.run(get_operator("paraphrase")("paraphrase", params).run(ctx, {"candidates": [PARENT]}))
    return out["candidates"], ctx


def test_paraphrase_samples_n_variants_at_a_positive_temperature() -> None:
    counter = itertools.count()
    fake = FakeModel(fn=lambda messages: json.dumps({"instruction": f"Put the words in A-Z order ({next(counter)})."}))
    out, _ = run(fake, n=3)
    assert len({p.instruction for p in out}) == 3
    assert all(p.output_format == "One line." for p in out)
    assert [r.temperature for r in fake.requests] == [1.0, 1.0, 1.0]
    assert "Sort the words alphabetically." in fake.requests[0].messages[-1]["content"]


def test_identical_samples_are_dropped_as_duplicates() -> None:
    out, ctx = run(FakeModel(default=json.dumps({"instruction": "Arrange the words in A-Z order."})), n=3)
    assert len(out) == 1
    assert [d.reason for d in ctx.dropped] == ["duplicate of another variant"] * 2


def test_a_paraphrase_identical_to_the_parent_is_dropped() -> None:
    out, ctx = run(FakeModel(default=json.dumps({"instruction": PARENT.instruction})), n=1)
    assert out == [] and "identical" in ctx.dropped[0].reason
