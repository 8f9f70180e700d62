"""The meta prompt optimizer: proposals are checked, repaired or dropped, and kept only if better."""

from __future__ import annotations

import asyncio
import json
import random

from search_fakes import scripted

from graphopt.graph.io import load_graph
from graphopt.lm import LM
from graphopt.testing import FakeModel
from graphopt.search.budgets import get_budget
from graphopt.search.evaluator import Evaluator
from graphopt.search.run import Run
from graphopt.search.prompt_opt import MetaPromptOptimizer, llm_nodes
from graphopt.templates import escape_stray_braces, prompt_placeholders, restore_placeholders
from graphopt.store import RunStore
from graphopt.tasks import get_task


def test_stray_braces_are_escaped_and_placeholders_kept():
    text = 'Reply with {"instruction": "..."} about {program}.'
    escaped = escape_stray_braces(text, {"program"})
    assert prompt_placeholders(escaped) == {"program"}
    assert escaped.format(program="P") == 'Reply with {"instruction": "..."} about P.'


def test_dropped_placeholders_come_back_with_their_lines():
    current = "Intro.\nThe program:\n{program}\nFailures: {failures}\nEnd."
    repaired, restored = restore_placeholders("A better intro, specific to sorting.", current, {"program", "failures"})
    assert restored == {"program", "failures"}
    assert prompt_placeholders(repaired) == {"program", "failures"}
    assert repaired.startswith("A better intro") and "Failures: {failures}" in repaired


def _evaluator(tmp_path, lm, task):
    store = RunStore.open(tmp_path / "run")
    store.ensure_run({"task": task.name, "models": {}})
    budget = get_budget("tiny", val_limit=6, minibatch=3)
    return Evaluator(task, lm, Run(store), budget, task.seed_program)


def test_edits_every_llm_node_and_keeps_the_graph_only_if_validation_improves(tmp_path):
    task = get_task("word_sorting", difficulty="easy", sizes=(12, 10, 10), seed=1)
    fake = FakeModel(fn=scripted)
    lm = LM(transport=fake, cache_dir=None)
    evaluator = _evaluator(tmp_path, lm, task)
    spec = load_graph("tgd")
    start = asyncio.run(evaluator.evaluate(spec))

    result = asyncio.run(MetaPromptOptimizer(lm, iterations=1, candidates=1).optimize(start, evaluator, task, random.Random(0)))

    edited = {(e.node, e.prompt_name) for e in result.edits}
    expected = {(node.id, name) for node, op, names in llm_nodes(spec) for name in names}
    assert edited == expected  # one proposal per rendered prompt of every LLM-backed node
    assert expected == {("critique", "critique"), ("rewrite", "rewrite"), ("rewrite", "feedback")}
    assert all(e.accepted for e in result.edits)
    assert len(result.tried) == 1
    tried = result.tried[0]
    assert tried.spec.node("critique").prompts["critique"].endswith("Be specific about alphabetical order.")
    # The scripted model scores both graphs 1.0: not better, so the start graph stays the best.
    assert tried.val_score == start.val_score == 1.0
    assert result.best is start
    assert evaluator.run.store.candidate(tried.candidate_id).parents == (start.candidate_id,)


def test_unusable_replies_are_dropped_with_a_reason_and_nothing_is_scored(tmp_path):
    task = get_task("word_sorting", difficulty="easy", sizes=(12, 10, 10), seed=1)

    def reply(messages):
        if "improve one prompt" in messages[-1]["content"]:
            return json.dumps({"prompt": "short"})  # too short to be a prompt
        return scripted(messages)

    lm = LM(transport=FakeModel(fn=reply), cache_dir=None)
    evaluator = _evaluator(tmp_path, lm, task)
    start = asyncio.run(evaluator.evaluate(load_graph("tgd")))
    result = asyncio.run(MetaPromptOptimizer(lm).optimize(start, evaluator, task, random.Random(0)))
    assert result.edits and not any(e.accepted for e in result.edits)
    assert {e.reason for e in result.edits} == {"reply has no usable prompt"}
    assert result.tried == [] and result.best is start


def test_prompts_a_node_never_renders_are_not_edited_and_do_not_change_the_hash():
    from graphopt.search.archive import graph_hash

    spec = load_graph("tgd")  # its rewrite has no history edge: the history section is never shown
    names = {node.id: names for node, _, names in llm_nodes(spec)}
    assert "history" not in names["rewrite"] and "feedback" in names["rewrite"]
    nodes = [n.model_copy(update={"prompts": {**n.prompts, "history": "Unused {attempts} text."}}) if n.op == "rewrite" else n for n in spec.nodes]
    unused = spec.model_copy(update={"nodes": nodes})
    assert graph_hash(unused) == graph_hash(spec)
    nodes = [n.model_copy(update={"prompts": {**n.prompts, "feedback": "Critiques: {critiques}"}}) if n.op == "rewrite" else n for n in spec.nodes]
    assert graph_hash(spec.model_copy(update={"nodes": nodes})) != graph_hash(spec)
