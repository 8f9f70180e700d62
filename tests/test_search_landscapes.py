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
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.search.budgets import get_budget
from graphopt.search.executor import LocalExecutor
from graphopt.search.pipeline import run_search
from graphopt.store import RunStore
from graphopt.tasks import get_task

MAGIC = "Sort the words in alphabetical order, MAGIC."
PLAIN = "Sort the words."  # what a rewrite fed by one critique writes: right on about half
CRITIQUE = "Mention the magic word."


def _task():
    # 16 validation examples for the search, 8 more held out for the winner's confirmation: a
    # paired sign test needs about 5 one-sided wins to call a difference, which 8 examples at
    # "right on about half" do not give.
    return get_task("word_sorting", difficulty="easy", sizes=(15, 24, 4), seed=7)


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
    plan = get_budget("tiny", val_limit=16, test_limit=4, minibatch=4, inner_steps=1, seeds=seeds, **budget)
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
        "tiny", val_limit=16, test_limit=4, minibatch=4, inner_steps=1, seeds=("tgd", "fewshot"),
        generations=4, children=6, population=4, prompt_iterations=0, llm_share=0.0, patience=4,
    )
    graphs = [load_graph(name) for name in plan.seeds]
    return await run_search(task, lm, plan, tmp_path / "run", graphs, executor=LocalExecutor(task, lm, 4), seed=seed)


def meta_only(messages, request) -> str:
    """Only a rewrite whose prompt the meta model edited writes the winning instruction; before
    that every rewrite scores 0, so the inner loop accepts nothing (the seed paper's case: a
    capable optimizer held back by its own prompt)."""
    text = messages[-1]["content"]
    if request.model == "fake/program":
        return _program(messages)
    if "improve one prompt of an automatic prompt optimizer" in text:
        current = text.split("<<<", 1)[1].split(">>>", 1)[0].strip()
        return json.dumps({"prompt": current + "\nBe MAGIC-AWARE."})
    if "Propose ONE new graph" in text or "cannot be used" in text:
        return "no proposal"
    if '"instruction"' in text:
        return json.dumps({"instruction": MAGIC if "MAGIC-AWARE" in text else "Sort."})
    return CRITIQUE


def _run_meta(tmp_path, prompt_iterations):
    task = _task()
    lm = _lm(meta_only)
    plan = get_budget(
        "tiny", val_limit=16, test_limit=4, minibatch=4, inner_steps=1, seeds=("tgd", "fewshot"),
        generations=2, children=3, population=4, prompt_iterations=prompt_iterations, llm_share=0.0,
    )
    graphs = [load_graph(name) for name in plan.seeds]
    return asyncio.run(run_search(task, lm, plan, tmp_path, graphs, executor=LocalExecutor(task, lm, 4)))


def test_only_the_meta_prompt_optimizer_unlocks_the_top_and_the_search_wins_through_it(tmp_path):
    without = _run_meta(tmp_path / "without", prompt_iterations=0)
    assert without.best.val_score < 1.0  # structure alone cannot get there

    report = _run_meta(tmp_path / "with", prompt_iterations=1)
    with RunStore.open(tmp_path / "with", read_only=True) as store:
        seeds = [c for c in store.candidates() if c.origin == "seed"]
    assert all(c.evaluation.val_score == 0.0 for c in seeds)  # no inner loop accepted anything
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
        "tiny", val_limit=16, test_limit=4, minibatch=4, inner_steps=1, seeds=("tgd",),
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


def _boosting(proposals: list[int]):
    """A capable meta model: its n-th proposal puts "BOOST" n times in the rewrite's prompt, and
    a rewrite prompted with n BOOSTs writes an instruction right on about n quarters of the
    examples. Mutations and crossovers never gain; only further meta proposals do."""
    from graphopt.operators.rewrite import REWRITE_PROMPT

    def fn(messages, request) -> str:
        text = messages[-1]["content"]
        if request.model == "fake/program":
            words = text.split("List:", 1)[-1].split()
            level = messages[0]["content"].count("LEVEL")
            return " ".join(sorted(words)) if sum(map(len, words)) % 4 < level else "no"
        if "Propose ONE new graph" in text:
            proposals.append(1)
            boosted = REWRITE_PROMPT.text + " BOOST" * len(proposals)
            return json.dumps({
                "rationale": "a sharper rewrite", "name": f"boost{len(proposals)}",
                "nodes": [{"id": "critique", "op": "critique", "params": [], "prompts": []},
                          {"id": "rewrite", "op": "rewrite", "params": [], "prompts": [{"name": "rewrite", "text": boosted}]}],
                "edges": [{"source": "input.program", "target": "critique.candidates"},
                          {"source": "input.traces", "target": "critique.traces"},
                          {"source": "input.program", "target": "rewrite.candidates"},
                          {"source": "critique.feedback", "target": "rewrite.feedback"}],
            })
        if '"instruction"' in text:
            return json.dumps({"instruction": "Sort the words." + " LEVEL" * text.count("BOOST")})
        return CRITIQUE

    return fn


def test_a_capable_meta_model_whose_proposals_gain_keeps_its_slots_with_the_default_settings(tmp_path):
    proposals: list[int] = []
    report = _search(
        tmp_path / "run", _boosting(proposals), ("tgd",), generations=4, children=2, prompt_iterations=0,
        llm_share=1.0, crossover_share=0.0, patience=10,
    )
    with RunStore.open(tmp_path / "run", read_only=True) as store:
        origins = {}
        for c in store.candidates():
            origins.setdefault(c.generation, []).append(c.origin)
    assert get_budget("tiny").meta_share is None  # no fixed share: the measured gain decides
    assert all(origins[g] == ["llm", "llm"] for g in (1, 2, 3, 4)), origins
    assert report.best.val_score == 1.0 and "BOOST" in report.best.spec.nodes[1].prompts["rewrite"]


def _all_wrong(messages, request) -> str:
    if request.model == "fake/program":
        return "no"
    return structural(messages, request)


def test_when_every_seed_ties_at_zero_the_winner_is_a_seed_and_says_why(tmp_path):
    report = _search(tmp_path / "run", _all_wrong, ("tgd", "tgd_select", "fewshot"), generations=2, children=3)
    with RunStore.open(tmp_path / "run", read_only=True) as store:
        winner = store.candidate(report.best.candidate_id)
        (event,) = store.events("winner")
    assert winner.origin == "seed" and report.best.val_score == 0.0
    best_row = next(r for r in report.rows if r.role == "best")
    assert "best seed graph" in best_row.why and event.payload["why"] == best_row.why


def _demos_only(messages, request) -> str:
    """The tiny-model case: the program is right (on about two thirds) only with demos in its
    prompt; instructions, critiques and meta proposals change nothing."""
    if request.model == "fake/program":
        words = messages[-1]["content"].split("List:", 1)[-1].split()
        right = len(messages) > 2 and sum(map(len, words)) % 3 != 0
        return " ".join(sorted(words)) if right else "no"
    if "improve one prompt of an automatic prompt optimizer" in messages[-1]["content"]:
        current = messages[-1]["content"].split("<<<", 1)[1].split(">>>", 1)[0].strip()
        return json.dumps({"prompt": current + "\nBe thorough."})
    return structural(messages, request)


def test_when_only_demos_give_signal_the_fewshot_seed_or_a_descendant_wins(tmp_path):
    report = _search(tmp_path / "run", _demos_only, ("tgd", "tgd_select", "fewshot"), generations=2, children=3)
    with RunStore.open(tmp_path / "run", read_only=True) as store:
        rows = {c.id: c for c in store.candidates()}
    cid = report.best.candidate_id
    while rows[cid].parents:
        cid = rows[cid].parents[0]
    assert rows[cid].name == "fewshot" and report.best.val_score > 0.5
    assert report.best.program is not None and report.best.program.demos


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


def _category_task():
    """12 categories, each with a secret answer; an input names its category among filler words."""
    from graphopt.tasks.base import Task
    from graphopt.types import Example
    from graphopt.program import Program

    def examples(prefix: str, per: int) -> list:
        return [
            Example(id=f"{prefix}{c}-{i}", input=f"Item {prefix}{i} of kind k{c}: what is its code?", target=f"code{c * 7 % 12}")
            for i in range(per) for c in range(12)  # every kind in the loop's dev split and in the rest of train
        ]

    return Task(name="codes", train=examples("t", 3), val=examples("v", 2), test=examples("x", 1),
                seed_program=Program(instruction="Give the code of the item's kind."), extract=str.strip)


def _copies_a_same_kind_demo(messages, request) -> str:
    """The program model knows a kind's code only from a demo of that kind in its prompt."""
    if request.model != "fake/program":
        return "no proposal" if "Propose ONE new graph" in messages[-1]["content"] else CRITIQUE
    kind = messages[-1]["content"].split("kind ", 1)[1].split(":", 1)[0]
    for asked, answer in zip(messages[1:-1:2], messages[2:-1:2]):
        if f"kind {kind}:" in asked["content"]:
            return answer["content"]
    return "no"


def test_only_demos_retrieved_per_input_reach_the_top_and_the_search_finds_them(tmp_path):
    """Fixed demo sets show at most a few of 12 kinds; retrieval shows every input its own kind.
    From seeds without retrieval (tgd, fewshot), the structure search must bring it in."""
    found = []
    for seed in range(5):
        task = _category_task()
        lm = _lm(_copies_a_same_kind_demo)
        plan = get_budget(
            "tiny", val_limit=12, test_limit=12, minibatch=4, inner_steps=1, seeds=("tgd", "fewshot"),
            generations=4, children=6, population=4, prompt_iterations=0, llm_share=0.0, patience=4,
        )
        graphs = [load_graph(name) for name in plan.seeds]
        report = asyncio.run(run_search(task, lm, plan, tmp_path / str(seed), graphs,
                                        executor=LocalExecutor(task, lm, 4), seed=seed))
        with RunStore.open(tmp_path / str(seed), read_only=True) as store:
            seed_scores = [c.evaluation.val_score for c in store.candidates() if c.origin == "seed"]
        assert len(seed_scores) == 2 and max(seed_scores) < 0.5  # fixed demos cannot get there
        if report.best.val_score == 1.0:
            assert any(n.op == "retrieve" for n in report.best.spec.nodes)
            found.append(seed)
    assert len(found) >= 4, f"found in seeds {found}"
