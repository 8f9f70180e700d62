"""vote: a program that answers by the majority of its voters' extracted answers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from graphopt.program import export_messages
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.operators import StepContext, get_operator
from graphopt.program import run_program
from graphopt.tasks.base import Task
from graphopt.types import Example
from graphopt.program import Program

EX = Example(id="q", input="question", target="b")


def task() -> Task:
    return Task(name="toy", train=[EX], val=[EX], test=[EX], seed_program=Program(instruction="x"),
                extract=lambda s: s.strip().split()[-1] if s.strip() else "")


def voting(*instructions: str) -> Program:
    lead, *others = [Program(instruction=i) for i in instructions]
    return lead.model_copy(update={"vote": tuple(others)})


def run(program: Program, replies: dict[str, str]) -> tuple[Any, FakeModel]:
    fake = FakeModel(by_substring=replies)
    [trace] = asyncio.run(run_program(program, [EX], task(), LM(LMConfig(), transport=fake, cache_dir=None)))
    return trace, fake


def test_the_majority_of_extracted_answers_wins_case_and_spacing_aside() -> None:
    trace, fake = run(voting("one", "two", "three"), {"one": "so a", "two": "it is b", "three": "then  B"})
    assert trace.answer.lower() == "b" and trace.score == 1.0 and fake.calls == 3
    assert [s.name for s in trace.steps] == ["voter1", "voter2", "voter3"]


def test_a_tie_goes_to_the_earliest_voter() -> None:
    trace, _ = run(voting("one", "two"), {"one": "a", "two": "b"})
    assert trace.answer == "a" and trace.score == 0.0
    trace, _ = run(voting("two", "one"), {"one": "a", "two": "b"})
    assert trace.answer == "b" and trace.score == 1.0


def test_a_vote_saves_loads_renders_and_exports() -> None:
    program = voting("one", "two", "three")
    again = Program.model_validate_json(program.model_dump_json())
    assert again == program and len(again.vote) == 2
    assert program.render().startswith("A vote of 3 programs")
    assert len(export_messages(program)["vote"]["others"]) == 2
    assert Program(instruction="one").id != program.id


def run_op(candidates: list[Program], **params: Any) -> tuple[list[Program], StepContext]:
    ctx = StepContext(lm=LM(LMConfig(), transport=FakeModel(), cache_dir=None), task=task(), minibatch=[EX])
    out = asyncio.run(get_operator("vote")("vote", params).run(ctx, {"candidates": candidates}))
    return out["candidates"], ctx


def test_vote_op_combines_the_first_n_distinct_candidates_flattening_votes() -> None:
    a, b, c, d = (Program(instruction=i) for i in "abcd")
    [program], _ = run_op([a, a, b, c, d], n=3)
    assert program.instruction == "a" and [p.instruction for p in program.vote] == ["b", "c"]
    [nested], _ = run_op([voting("a", "b"), c], n=3)
    assert [p.instruction for p in nested.vote] == ["b", "c"] and all(not p.vote for p in nested.vote)


def test_vote_op_drops_with_a_reason_when_fewer_than_two_distinct() -> None:
    out, ctx = run_op([Program(instruction="a")] * 3)
    assert out == [] and "a vote needs 2" in ctx.dropped[0].reason
    with pytest.raises(ValueError):
        get_operator("vote")("vote", {"n": 1})


def test_a_vote_whose_voters_mostly_failed_is_an_error_not_an_answer() -> None:
    from graphopt.errors import LLMError

    def fn(messages):
        if "two" in messages[0]["content"] or "three" in messages[0]["content"]:
            raise LLMError("server down", provider="fake", model="fake", status=503, retryable=False)
        return "b"

    fake = FakeModel(fn=fn)
    [trace] = asyncio.run(run_program(voting("one", "two", "three"), [EX], task(),
                                      LM(LMConfig(max_retries=0), transport=fake, cache_dir=None)))
    assert trace.error and trace.score == 0.0  # one voter of three is no majority
    [one_down] = asyncio.run(run_program(voting("one", "one b", "two"), [EX], task(),
                                         LM(LMConfig(max_retries=0), transport=FakeModel(fn=fn), cache_dir=None)))
    assert not one_down.error and one_down.answer == "b"
