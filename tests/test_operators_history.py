"""history: the best n attempts, worst first."""

from __future__ import annotations

import asyncio

from graphopt.lm import LM, LMConfig

from graphopt.testing import FakeModel
from graphopt.operators import StepContext, get_operator
from graphopt.tasks.base import Task
from graphopt.types import Attempt, Example
from graphopt.program import Program


def run(history: list[Attempt], n: int) -> list[Attempt]:
    examples = [Example(id="e0", input="x", target="y")]
    task = Task(name="toy", train=examples, val=examples, test=examples, seed_program=Program(instruction="p"),
                extract=str.strip)
    ctx = StepContext(lm=LM(LMConfig(), transport=FakeModel(), cache_dir=None), task=task, minibatch=examples)
    return asyncio.run(get_operator("history")("history", {"n": n}).run(ctx, {"history": history}))["history"]


def attempt(name: str, score: float, step: int) -> Attempt:
    return Attempt(program=Program(instruction=name), score=score, step=step)


def test_history_keeps_the_best_n_sorted_worst_first() -> None:
    attempts = [attempt("a", 0.5, 0), attempt("b", 0.9, 1), attempt("c", 0.1, 2), attempt("d", 0.7, 3)]
    assert [a.program.instruction for a in run(attempts, n=3)] == ["a", "d", "b"]


def test_history_keeps_each_program_once_at_its_best_score() -> None:
    attempts = [attempt("a", 0.2, 0), attempt("a", 0.6, 2), attempt("b", 0.4, 1)]
    out = run(attempts, n=5)
    assert [(a.program.instruction, a.score) for a in out] == [("b", 0.4), ("a", 0.6)]
