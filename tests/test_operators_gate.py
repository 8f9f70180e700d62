"""gate: optimizer stages in one graph (a chain by step, a switch when the loop stalls)."""

from __future__ import annotations

import asyncio

import pytest

from graphopt.graph.spec import GraphSpec
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.loop import LoopSizes, optimize
from graphopt.operators import StepContext, get_operator
from graphopt.tasks import get_task


def is_open(step: int, stalled: int = 0, **params) -> bool:
    ctx = StepContext(lm=None, task=None, minibatch=[], step=step, stalled=stalled)  # type: ignore[arg-type]
    return get_operator("gate")("g", params).is_open(ctx)


def test_windows_and_stalls_open_and_close_the_gate() -> None:
    assert [is_open(s, until=2) for s in range(4)] == [True, True, False, False]
    assert [is_open(s, start=2) for s in range(4)] == [False, False, True, True]
    assert [is_open(3, stalled=n, when="stalled", patience=2) for n in range(4)] == [False, False, True, True]
    assert [is_open(3, stalled=n, when="progressing", patience=2) for n in range(4)] == [True, True, False, False]
    with pytest.raises(ValueError, match="never open"):
        get_operator("gate")("g", {"start": 3, "until": 3})


def staged(gate_a: dict, gate_b: dict) -> GraphSpec:
    """Branch A: demos from train; branch B: an instruction rewrite; the best of both and the current kept."""
    return GraphSpec.model_validate({
        "name": "staged",
        "nodes": [
            {"id": "gate_a", "op": "gate", "params": gate_a},
            {"id": "fewshot", "op": "fewshot", "params": {"source": "train", "max_demos": 2}},
            {"id": "gate_b", "op": "gate", "params": gate_b},
            {"id": "rewrite", "op": "rewrite"},
            {"id": "select", "op": "select"},
        ],
        "edges": [
            {"source": "input.program", "target": "gate_a.candidates"},
            {"source": "gate_a.candidates", "target": "fewshot.candidates"},
            {"source": "input.program", "target": "gate_b.candidates"},
            {"source": "gate_b.candidates", "target": "rewrite.candidates"},
            {"source": "input.program", "target": "select.candidates"},
            {"source": "fewshot.candidates", "target": "select.candidates"},
            {"source": "rewrite.candidates", "target": "select.candidates"},
        ],
    })


def run(spec: GraphSpec, replies) -> list:
    task = get_task("word_sorting", difficulty="easy", sizes=(12, 6, 6), seed=1)
    fake = FakeModel(fn=replies)
    lm = LM(LMConfig(), transport=fake, cache_dir=None)
    result = asyncio.run(optimize(task.seed_program, spec, task, lm, LoopSizes(steps=3, minibatch=3), seed=0))
    return result.history


def rewrites(record) -> int:
    return record.usage.get("optimizer", {}).get("calls", 0)


def test_a_chain_runs_the_demo_stage_then_the_rewrite_stage() -> None:
    history = run(staged({"until": 1}, {"start": 1}), lambda messages: '{"instruction": "Sort them."}')
    assert rewrites(history[0]) == 0
    assert all(rewrites(r) == 1 for r in history[1:])
    assert len(history[0].node_outputs["fewshot"]["candidates"]) == 1
    assert all(r.node_outputs["fewshot"]["candidates"] == [] for r in history[1:])


def test_a_switch_moves_to_the_second_stage_only_once_the_first_stalls() -> None:
    # Nothing ever scores: every step stalls, so the switch happens after the first step.
    history = run(staged({"when": "progressing"}, {"when": "stalled"}), lambda messages: '{"instruction": "Sort."}')
    assert [r.accepted for r in history] == [None, None, None]
    assert rewrites(history[0]) == 0 and rewrites(history[1]) == 1 and rewrites(history[2]) == 1
