"""rewrite: new programs from critiques and earlier attempts, garbage replies dropped."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from graphopt.lm import LM, LMConfig

from graphopt.testing import FakeModel
from graphopt.operators import StepContext, get_operator
from graphopt.tasks.base import Task
from graphopt.types import Attempt, Example, Feedback
from graphopt.program import Demo, Program

PARENT = Program(instruction="Sort the words.", demos=(Demo(input="b a", output="a b"),), output_format="One line.")


def make_ctx(fake: FakeModel) -> StepContext:
    examples = [Example(id=f"e{i}", input=f"x{i}", target=f"y{i}") for i in range(4)]
    task = Task(name="toy", train=examples, val=examples, test=examples, seed_program=PARENT, extract=str.strip)
    config = LMConfig().with_models(program="fake/program", optimizer="fake/optimizer")
    return StepContext(lm=LM(config, transport=fake, cache_dir=None), task=task, minibatch=examples)


def rewrite(ctx: StepContext, inputs: dict[str, Any], **params: Any) -> list[Program]:
    return asyncio.run(get_operator("rewrite")("rewrite", params).run(ctx, inputs))["candidates"]


def as_json(instruction: str) -> str:
    return json.dumps({"instruction": instruction})


def test_rewrite_returns_the_new_instruction_and_keeps_demos_and_output_format() -> None:
    ctx = make_ctx(FakeModel(default=as_json("Sort the words alphabetically, A to Z.")))
    [program] = rewrite(ctx, {"candidates": [PARENT]})
    assert program.instruction == "Sort the words alphabetically, A to Z."
    assert program.demos == PARENT.demos and program.output_format == "One line."


def test_rewrite_requests_structured_output_with_the_callers_temperature() -> None:
    fake = FakeModel(default=as_json("Sort the words alphabetically."))
    rewrite(make_ctx(fake), {"candidates": [PARENT]}, temperature=0.3, max_tokens=77)
    request = fake.requests[0]
    assert request.response_format["json_schema"]["schema"]["required"] == ["instruction"]
    assert (request.temperature, request.max_tokens, request.model) == (0.3, 77, "fake/optimizer")


def test_rewrite_accepts_a_plain_text_reply_from_a_provider_ignoring_the_schema() -> None:
    ctx = make_ctx(FakeModel(default="Instruction: Sort the words from A to Z."))
    assert [p.instruction for p in rewrite(ctx, {"candidates": [PARENT]})] == ["Sort the words from A to Z."]


def test_garbage_replies_are_dropped_with_reasons_and_good_ones_kept() -> None:
    replies = [
        '{"answer": "no instruction here"}',
        as_json(""),
        as_json("Sort."),
        as_json("Sort the words."),
        as_json("Sort the words in alphabetical order."),
        as_json("Sort the words in alphabetical order."),
    ]
    ctx = make_ctx(FakeModel(replies=replies))
    out = rewrite(ctx, {"candidates": [PARENT]}, k=6)
    assert [p.instruction for p in out] == ["Sort the words in alphabetical order."]
    reasons = sorted(d.reason for d in ctx.dropped)
    assert reasons == [
        "duplicate of another proposal",
        "empty instruction",
        "instruction identical to the current one",
        "instruction shorter than 10 characters",
        "unparseable reply (no 'instruction' field)",
    ]
    assert all(d.node == "rewrite" for d in ctx.dropped)


def test_rewrite_shows_the_critique_of_the_program() -> None:
    fake = FakeModel(default=as_json("Sort the words alphabetically."))
    feedback = [Feedback(program_id=PARENT.id, text="CRITIQUE-TEXT: mention alphabetical order")]
    rewrite(make_ctx(fake), {"candidates": [PARENT], "feedback": feedback})
    prompt = fake.requests[0].messages[-1]["content"]
    assert "Feedback on the current program:\nCRITIQUE-TEXT" in prompt
    assert "Earlier instructions" not in prompt


def test_rewrite_shows_earlier_attempts_worst_first_with_scores() -> None:
    fake = FakeModel(default=as_json("Sort the words alphabetically."))
    history = [
        Attempt(program=Program(instruction="BEST attempt"), score=0.9, step=1),
        Attempt(program=Program(instruction="WORST attempt"), score=0.1, step=2),
    ]
    rewrite(make_ctx(fake), {"candidates": [PARENT], "history": history})
    prompt = fake.requests[0].messages[-1]["content"]
    assert prompt.index("WORST attempt") < prompt.index("BEST attempt")
    assert "Score: 0.900" in prompt


def test_rewrite_k_asks_k_times_and_returns_distinct_programs() -> None:
    fake = FakeModel(replies=[as_json(f"Sort the words, variant {i}.") for i in range(3)])
    out = rewrite(make_ctx(fake), {"candidates": [PARENT]}, k=3)
    assert fake.calls == 3 and len({p.id for p in out}) == 3
