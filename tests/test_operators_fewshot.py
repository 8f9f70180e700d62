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


# A train set of 16 examples; the program model answers right when it is shown both the "anchor"
# demo (not a train example: only a program that keeps its own demos has it) and the key
# example 13, and right on half the inputs with the anchor alone.
KEYED = [Example(id=f"k{i}", input=f"word{i} q", target="right") for i in range(16)]


def keyed_model(messages: list) -> str:
    shown = " ".join(m["content"] for m in messages[1:-1])
    asked = int(messages[-1]["content"].split()[0].removeprefix("word"))
    if "anchor " in shown and ("word13 " in shown or asked % 2 == 0):
        return "right"
    return "wrong"


def keyed_run(parent: Program, **params: Any) -> tuple[list[Program], StepContext, FakeModel]:
    task = Task(name="keys", train=KEYED, val=KEYED, test=KEYED, seed_program=parent, extract=str.strip)
    fake = FakeModel(fn=keyed_model)
    ctx = StepContext(lm=LM(LMConfig(), transport=fake, cache_dir=None), task=task, minibatch=KEYED[:4], step=0)
    out = asyncio.run(get_operator("fewshot")("fewshot", {"source": "train", **params}).run(ctx, {"candidates": [parent]}))
    return out["candidates"], ctx, fake


def test_greedy_add_and_drop_builds_on_the_programs_demos_to_the_one_set_that_scores_where_random_sets_cannot() -> None:
    from graphopt.program import Demo

    anchored = PARENT.with_demos([Demo(input="anchor q", output="right")])
    [greedy], ctx, fake = keyed_run(anchored, choose="greedy", rounds=3, tries=12, max_demos=2)
    assert [d.input for d in greedy.demos] == ["anchor q", "word13 q"] and fake.calls > 0
    assert asyncio.run(ctx.score([anchored, greedy])) == {anchored.id: 0.5, greedy.id: 1.0}
    # Random sets replace the program's demos with samples of the pool: never the anchor, never the top.
    variants, ctx, _ = keyed_run(anchored, choose="random", k=8, max_demos=2)
    assert max(asyncio.run(ctx.score(variants)).values()) == 0.0
    # No single change helps a program without the anchor: greedy stops at once, nothing is made.
    assert keyed_run(PARENT, choose="greedy", rounds=3, tries=12, max_demos=2)[0] == []


def test_diverse_demos_come_from_distinct_groups_where_random_ones_repeat_a_group() -> None:
    groups = [Example(id=f"g{g}-{i}", input=f"{topic} {topic} {topic} item {i}", target="x")
              for g, topic in enumerate(("apple pear plum", "brick stone sand", "cloud rain snow", "dog cat cow"))
              for i in range(4)]
    task = Task(name="groups", train=groups, val=groups, test=groups, seed_program=PARENT, extract=str.strip)

    def picks(choose: str) -> list[set[str]]:
        ctx = StepContext(lm=LM(LMConfig(), transport=FakeModel(default="x"), cache_dir=None), task=task, minibatch=[], step=0)
        op = get_operator("fewshot")("fewshot", {"source": "train", "choose": choose, "k": 8, "max_demos": 4})
        out = asyncio.run(op.run(ctx, {"candidates": [PARENT]}))["candidates"]
        return [{d.input.split(" item")[0] for d in p.demos} for p in out]

    assert all(len(topics) == 4 for topics in picks("diverse"))  # one demo of each group, every variant
    assert sum(len(topics) < 4 for topics in picks("random")) >= 4  # random sets repeat a group most of the time


def test_order_puts_the_demo_most_like_the_minibatch_last_and_is_deterministic() -> None:
    from graphopt.program import Demo

    task = Task(name="toy", train=TRAIN, val=TRAIN, test=TRAIN, seed_program=PARENT, extract=str.strip)
    batch = [Example(id="m", input="alpha beta gamma", target="x")]
    demos = [Demo(input="alpha beta gamma delta", output="1"), Demo(input="zeta", output="2"), Demo(input="alpha", output="3")]
    parent = PARENT.with_demos(demos)
    ctx = StepContext(lm=LM(LMConfig(), transport=FakeModel(default="x"), cache_dir=None), task=task, minibatch=batch, step=0)
    op = get_operator("fewshot")("fewshot", {"order": "similar_last"})
    assert [d.output for d in op._ordered(ctx, demos)] == ["2", "3", "1"]
    op = get_operator("fewshot")("fewshot", {"order": "short_first"})
    assert [d.output for d in op._ordered(ctx, demos)] == ["2", "3", "1"] and op._ordered(ctx, parent.demos) == op._ordered(ctx, demos)


def test_greedy_does_not_reward_a_demo_for_being_copied_by_the_example_it_came_from() -> None:
    """The model answers right only when the very input is among its demos: bootstrapped demos of
    the minibatch would score 1.0 on their own examples, and nothing on the others."""
    def copier(messages: list) -> str:
        shown = [m["content"] for m in messages[1:-1:2]]
        return "right" if messages[-1]["content"] in shown else "wrong"

    task = Task(name="copy", train=KEYED, val=KEYED, test=KEYED, seed_program=PARENT, extract=str.strip)
    minibatch_traces = [Trace(example=ex, output="right", answer="right", score=1.0) for ex in KEYED[:4]]
    ctx = StepContext(lm=LM(LMConfig(), transport=FakeModel(fn=copier), cache_dir=None), task=task, minibatch=KEYED[:4], step=0)
    op = get_operator("fewshot")("fewshot", {"source": "traces", "choose": "greedy", "rounds": 3, "tries": 4, "max_demos": 3})
    assert asyncio.run(op.run(ctx, {"candidates": [PARENT], "traces": minibatch_traces}))["candidates"] == []
