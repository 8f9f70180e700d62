"""Planted landscapes: scripted models where exactly one mechanism of the search reaches the top.

- structure: the rewrite writes the winning instruction only when two critiques feed it (one
  `parallel` mutation away from tgd); nothing else in reach scores above 0.
- meta prompt: the rewrite writes it only when its prompt says "MAGIC-AWARE", which only the meta
  prompt optimizer's edits put there.
- prompt inheritance: a tuned prompt of a parent must survive into the LLM proposer's child.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from graphopt.graph.io import load_graph
from graphopt.lm import LM, FakeModel, LMConfig
from graphopt.search.budgets import get_budget
from graphopt.search.executor import LocalExecutor
from graphopt.search.pipeline import run_search
from graphopt.store import RunStore
from graphopt.tasks import get_task

MAGIC = "Sort the words in alphabetical order, MAGIC."
PLAIN = "Sort the words."  # what a rewrite fed by one critique writes: right on about half
CRITIQUE = "Mention the magic word."


def _task():
    return get_task("word_sorting", difficulty="easy", sizes=(15, 8, 4), seed=7)


def _program(messages) -> str:
    """Right on every example with MAGIC, on about half with PLAIN, never otherwise."""
    words = messages[-1]["content"].split("List:", 1)[-1].split()
    instruction = messages[0]["content"]
    right = "MAGIC" in instruction or (PLAIN in instruction and sum(map(len, words)) % 2 == 0)
    return " ".join(sorted(words)) if right else "no"


def structural(messages, request) -> str:
    """Only a rewrite fed by two critiques writes the winning instruction."""
    text = messages[-1]["content"]
    if request.model == "fake/program":
        return _program(messages)
    if "improve one prompt of an automatic prompt optimizer" in text:
        return json.dumps({"prompt": text.split("<<<", 1)[1].split(">>>", 1)[0].strip() + "\nBe brief."})
    if "Propose ONE new graph" in text or "cannot be used" in text:
        return "no proposal"
    if '{"instruction"' in text or '"instruction"' in text:
        return json.dumps({"instruction": MAGIC if text.count(CRITIQUE) >= 2 else PLAIN})
    return CRITIQUE


def _lm(fn) -> LM:
    config = LMConfig(cache_dir=None).with_models(program="fake/program", optimizer="fake/opt", meta="fake/meta")
    return LM(config, transport=FakeModel(fn=fn))


def _search(tmp_path, fn, seeds, **budget):
    task = _task()
    lm = _lm(fn)
    plan = get_budget("tiny", val_limit=8, test_limit=4, minibatch=4, inner_steps=1, seeds=seeds, **budget)
    graphs = [load_graph(name) for name in seeds]
    return asyncio.run(run_search(task, lm, plan, tmp_path, graphs, executor=LocalExecutor(task, lm, 4), seed=budget.get("seed", 0)))


def test_the_structure_search_finds_the_one_structural_change_that_pays_in_9_of_10_seeds(tmp_path):
    found = []
    for seed in range(10):
        report = asyncio.run(_run_structure(tmp_path / str(seed), seed))
        if report.best.val_score == 1.0:
            assert sum(n.op == "critique" for n in report.best.spec.nodes) >= 2
            found.append(seed)
    assert len(found) >= 9, f"found in seeds {found}"


async def _run_structure(tmp_path, seed):
    task = _task()
    lm = _lm(structural)
    plan = get_budget(
        "tiny", val_limit=8, test_limit=4, minibatch=4, inner_steps=1, seeds=("tgd", "fewshot"),
        generations=4, children=6, population=4, prompt_iterations=0, llm_share=0.0, patience=4,
    )
    graphs = [load_graph(name) for name in plan.seeds]
    return await run_search(task, lm, plan, tmp_path / "run", graphs, executor=LocalExecutor(task, lm, 4), seed=seed)


def meta_only(messages, request) -> str:
    """Only a rewrite whose prompt the meta model edited writes the winning instruction."""
    text = messages[-1]["content"]
    if request.model == "fake/program":
        return _program(messages)
    if "improve one prompt of an automatic prompt optimizer" in text:
        current = text.split("<<<", 1)[1].split(">>>", 1)[0].strip()
        return json.dumps({"prompt": current + "\nBe MAGIC-AWARE."})
    if "Propose ONE new graph" in text or "cannot be used" in text:
        return "no proposal"
    if '"instruction"' in text:
        return json.dumps({"instruction": MAGIC if "MAGIC-AWARE" in text else PLAIN})
    return CRITIQUE


def _run_meta(tmp_path, prompt_iterations):
    task = _task()
    lm = _lm(meta_only)
    plan = get_budget(
        "tiny", val_limit=8, test_limit=4, minibatch=4, inner_steps=1, seeds=("tgd", "fewshot"),
        generations=2, children=3, population=4, prompt_iterations=prompt_iterations, llm_share=0.0,
    )
    graphs = [load_graph(name) for name in plan.seeds]
    return asyncio.run(run_search(task, lm, plan, tmp_path, graphs, executor=LocalExecutor(task, lm, 4)))


def test_only_the_meta_prompt_optimizer_unlocks_the_top_and_the_search_wins_through_it(tmp_path):
    without = _run_meta(tmp_path / "without", prompt_iterations=0)
    assert without.best.val_score < 1.0  # structure alone cannot get there

    report = _run_meta(tmp_path / "with", prompt_iterations=1)
    assert report.best.val_score == 1.0
    assert any("MAGIC-AWARE" in text for n in report.best.spec.nodes for text in n.prompts.values())
    with RunStore.open(tmp_path / "with", read_only=True) as store:
        origins = {c.id: c for c in store.candidates()}
    lineage, cid = [], report.best.candidate_id
    while cid:
        lineage.append(origins[cid].origin)
        cid = origins[cid].parents[0] if origins[cid].parents else None
    assert "prompt_opt" in lineage


def _keeps_ids(messages, request) -> str:
    """The meta model proposes tgd plus a select, keeping tgd's node ids and giving no prompts."""
    text = messages[-1]["content"]
    if "Propose ONE new graph" in text:
        return json.dumps({
            "rationale": "add a select", "name": "tgd_sel",
            "nodes": [{"id": "critique", "op": "critique", "params": [], "prompts": []},
                      {"id": "rewrite", "op": "rewrite", "params": [{"name": "k", "value": "2"}], "prompts": []},
                      {"id": "pick", "op": "select", "params": [], "prompts": []}],
            "edges": [{"source": "input.program", "target": "critique.candidates"},
                      {"source": "input.traces", "target": "critique.traces"},
                      {"source": "input.program", "target": "rewrite.candidates"},
                      {"source": "critique.feedback", "target": "rewrite.feedback"},
                      {"source": "rewrite.candidates", "target": "pick.candidates"}],
        })
    return meta_only(messages, request)


def test_an_llm_proposed_child_keeps_its_parents_tuned_prompts_and_the_meta_model_sees_the_task(tmp_path):
    task = _task()
    seen: list[str] = []

    def fn(messages, request):
        if "Propose ONE new graph" in messages[-1]["content"]:
            seen.append(messages[-1]["content"])
        return _keeps_ids(messages, request)

    lm = _lm(fn)
    plan = get_budget(
        "tiny", val_limit=8, test_limit=4, minibatch=4, inner_steps=1, seeds=("tgd",),
        generations=1, children=1, population=2, prompt_iterations=1, llm_share=1.0, crossover_share=0.0,
        meta_share=1.0,
    )
    asyncio.run(run_search(task, lm, plan, tmp_path / "run", [load_graph("tgd")], executor=LocalExecutor(task, lm, 2)))
    with RunStore.open(tmp_path / "run", read_only=True) as store:
        (child,) = [c for c in store.candidates() if c.origin == "llm"]
        parent = store.candidate(child.parents[0])
    assert parent.origin == "prompt_opt"  # the tuned graph (1.0) is the parent
    tuned = {n["id"]: n.get("prompts", {}) for n in parent.spec["nodes"]}
    kept = {n["id"]: n.get("prompts", {}) for n in child.spec["nodes"]}
    assert kept["critique"] == tuned["critique"] and "MAGIC-AWARE" in kept["rewrite"]["rewrite"]
    assert kept["pick"] == {}
    # The meta model saw the task, examples, the best program and the parents' tuned prompts.
    assert seen and "The task: word_sorting" in seen[0] and "Training examples" in seen[0]
    assert "The best program so far" in seen[0] and "MAGIC-AWARE" in seen[0]


def test_the_meta_share_turns_proposal_slots_into_mutations_while_meta_calls_would_dominate(tmp_path):
    calls: list[str] = []

    def fn(messages, request):
        if "Propose ONE new graph" in messages[-1]["content"]:
            calls.append("proposal")
        return _keeps_ids(messages, request)

    task = _task()
    lm = _lm(fn)
    plan = get_budget(
        "tiny", val_limit=8, test_limit=4, minibatch=4, inner_steps=1, seeds=("tgd",),
        generations=1, children=3, prompt_iterations=0, llm_share=1.0, crossover_share=0.0,
    )
    assert plan.meta_share == 0.05  # the default
    report = asyncio.run(run_search(task, lm, plan, tmp_path / "run", [load_graph("tgd")], executor=LocalExecutor(task, lm, 2)))
    assert calls == []  # a proposal would be most of this small run's tokens
    with RunStore.open(tmp_path / "run", read_only=True) as store:
        origins = [c.origin for c in store.candidates() if c.generation == 1]
    assert origins and set(origins) == {"mutation"} and report.best.val_score is not None


def test_a_family_whose_meta_proposals_gain_nothing_stops_getting_them(tmp_path):
    proposals: list[int] = []

    def fn(messages, request):
        if "Propose ONE new graph" in messages[-1]["content"]:
            proposals.append(1)  # a new tgd variant each time, no better than tgd
            return json.dumps({
                "rationale": "more rewrites", "name": f"tgd_k{len(proposals)}",
                "nodes": [{"id": "critique", "op": "critique", "params": [], "prompts": []},
                          {"id": "rewrite", "op": "rewrite", "params": [{"name": "temperature", "value": str(0.1 * len(proposals))}], "prompts": []}],
                "edges": [{"source": "input.program", "target": "critique.candidates"},
                          {"source": "input.traces", "target": "critique.traces"},
                          {"source": "input.program", "target": "rewrite.candidates"},
                          {"source": "critique.feedback", "target": "rewrite.feedback"}],
            })
        return structural(messages, request)

    report = _search(
        tmp_path / "run", fn, ("tgd",), generations=4, children=2, prompt_iterations=0, llm_share=1.0,
        crossover_share=0.0, meta_share=1.0, patience=10,
    )
    with RunStore.open(tmp_path / "run", read_only=True) as store:
        by_generation = {}
        for c in store.candidates():
            by_generation.setdefault(c.generation, []).append(c.origin)
    assert len(proposals) == 2 and by_generation[1] == ["llm", "llm"]  # two tries without a gain...
    assert all(set(by_generation[g]) == {"mutation"} for g in (2, 3, 4))  # ...then mutations only
    assert report.best.val_score is not None
