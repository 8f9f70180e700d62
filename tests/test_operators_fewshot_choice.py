"""fewshot's demo choice (random, diverse, greedy add/drop by metric or likelihood) and order, on scripted models."""

from __future__ import annotations

import asyncio
from typing import Any

from graphopt.lm import LM, LMConfig
from graphopt.operators import StepContext, get_operator
from graphopt.operators.catalogue import operator_catalogue, operator_detail
from graphopt.program import Demo, Program, Step
from graphopt.tasks.base import Task
from graphopt.testing import FakeModel
from graphopt.types import Example, StepTrace, Trace

PARENT = Program(instruction="Answer.")
MINIBATCH = [Example(id=f"m{j}", input=f"question m{j}", target=f"answer m{j}") for j in range(4)]
# Example m_j is answered right when the demo set is worth at least NEEDED[j]: only the one set
# of the three GOOD demos and nothing else is worth 6 (each good demo +2, each other one -1).
NEEDED = {"question m0": 1, "question m1": 2, "question m2": 4, "question m3": 6}
POOL = [Example(id=f"d{i}", input=f"pool item d{i}", target=f"out d{i}") for i in range(16)]
GOOD = {"pool item d3", "pool item d8", "pool item d13"}


def worth(demo_inputs: list[str]) -> int:
    return sum(2 if d in GOOD else -1 for d in demo_inputs)


def shown_demos(messages: list[dict[str, str]]) -> list[str]:
    return [m["content"] for m in messages[1:-1] if m["role"] == "user"]


def landscape(messages: list[dict[str, str]]) -> str:
    question = messages[-1]["content"]
    return f"answer {question.split()[-1]}" if worth(shown_demos(messages)) >= NEEDED[question] else "wrong"


def context(fake: FakeModel, train: list[Example], minibatch: list[Example] = MINIBATCH, step: int = 0,
            seed: Program = PARENT) -> StepContext:
    task = Task(name="toy", train=train, val=train, test=train, seed_program=seed, extract=str.strip)
    return StepContext(lm=LM(LMConfig(), transport=fake, cache_dir=None), task=task, minibatch=minibatch, step=step)


def fewshot(ctx: StepContext, inputs: dict[str, Any], **params: Any) -> list[Program]:
    return asyncio.run(get_operator("fewshot")("fewshot", params).run(ctx, inputs))["candidates"]


def copier(messages: list[dict[str, str]]) -> str:
    """Right exactly when its own question is among the demos shown (and it answers any earlier step)."""
    if messages[0]["content"] == "Think.":
        return "hmm"
    question = messages[-1]["content"]
    return f"answer {question.split()[0 if 'notes:' in question else -1]}" if question in shown_demos(messages) else "wrong"


# -- greedy add/drop ---------------------------------------------------------------------------

GREEDY = dict(choose="greedy", source="train", max_demos=3, rounds=3, tries=16)


def test_greedy_add_drop_finds_the_one_top_scoring_set_that_random_sets_of_the_same_budget_miss() -> None:
    fake = FakeModel(fn=landscape)
    ctx = context(fake, [*MINIBATCH, *POOL])
    [found] = fewshot(ctx, {"candidates": [PARENT]}, **GREEDY)
    assert {d.input for d in found.demos} == GOOD
    assert asyncio.run(ctx.score([found]))[found.id] == 1.0
    greedy_runs = fake.calls

    # Random demo sets, at least as many program runs on the same minibatch: none scores top.
    rival = FakeModel(fn=landscape)
    tried: list[Program] = []
    for step in range(greedy_runs // (32 * len(MINIBATCH)) + 1):
        rctx = context(rival, [*MINIBATCH, *POOL], step=step)
        tried += fewshot(rctx, {"candidates": [PARENT]}, source="train", max_demos=3, k=32)
    rctx = context(rival, [*MINIBATCH, *POOL])
    scores = asyncio.run(rctx.score(tried))
    assert len(tried) * len(MINIBATCH) >= greedy_runs
    assert max(scores.values()) < 1.0


def test_greedy_drops_a_harmful_demo_of_the_parent() -> None:
    bad = Demo(input="pool item d0", output="out d0")
    start = PARENT.with_demos([bad, Demo(input="pool item d3", output="out d3")])
    fake = FakeModel(fn=landscape)
    [found] = fewshot(context(fake, [*MINIBATCH, *POOL]), {"candidates": [start]}, **{**GREEDY, "max_demos": 2})
    # Full at 2 demos: no room to add until the harmful one is dropped, then the good ones go in.
    assert bad not in found.demos and "pool item d3" in {d.input for d in found.demos}
    assert worth([d.input for d in found.demos]) > worth([d.input for d in start.demos])


def test_greedy_keeps_a_parent_with_more_demos_than_max_demos_within_max_demos() -> None:
    many = PARENT.with_demos([Demo(input=f"pool item d{i}", output=f"out d{i}") for i in (3, 8, 0, 1)])
    fake = FakeModel(fn=landscape)
    [found] = fewshot(context(fake, [*MINIBATCH, *POOL]), {"candidates": [many]}, **{**GREEDY, "max_demos": 2})
    assert [d.input for d in found.demos] == ["pool item d3", "pool item d8"]  # its first two, and no move beats them


def test_greedy_stops_after_its_rounds() -> None:
    fake = FakeModel(fn=landscape)
    [found] = fewshot(context(fake, [*MINIBATCH, *POOL]), {"candidates": [PARENT]}, **{**GREEDY, "rounds": 1})
    assert len(found.demos) == 1 and found.demos[0].input in GOOD


def test_greedy_never_scores_an_example_with_its_own_bootstrapped_demo() -> None:
    # A model that copies: showing an example its own demo would make every bootstrapped demo a gain.
    traces = [Trace(example=ex, output=ex.target, answer=ex.target, score=1.0) for ex in MINIBATCH]
    fake = FakeModel(fn=copier)
    ctx = context(fake, MINIBATCH)
    out = fewshot(ctx, {"candidates": [PARENT], "traces": traces}, choose="greedy", source="traces", tries=8)
    assert fake.calls > 0
    assert all(r.messages[-1]["content"] not in shown_demos(r.messages) for r in fake.requests)
    assert out == [] and "same demos" in ctx.dropped[0].reason  # no set beats none: nothing new


def test_greedy_in_a_two_step_program_knows_a_demo_by_its_example_not_by_the_input_it_shows() -> None:
    # A bootstrapped demo shows the answering step's input (the example's input and the notes of
    # the step before), not the example's input: it must still be kept from its own example.
    two = Program(steps=[Step(name="reason", instruction="Think."),
                         Step(instruction="Answer.", input="{input}\nnotes: {steps.reason}")])
    traces = [
        Trace(example=ex, output=ex.target, answer=ex.target, score=1.0,
              steps=(StepTrace(name="reason", input=ex.input, output="hmm"),
                     StepTrace(name="answer", input=f"{ex.input}\nnotes: hmm", output=ex.target)))
        for ex in MINIBATCH
    ]
    fake = FakeModel(fn=copier)
    ctx = context(fake, MINIBATCH, seed=two)
    out = fewshot(ctx, {"candidates": [two], "traces": traces}, choose="greedy", source="traces", tries=8)
    answering = [r for r in fake.requests if r.messages[0]["content"] == "Answer."]
    assert answering and all(r.messages[-1]["content"] not in shown_demos(r.messages) for r in answering)
    assert out == []


def test_greedy_by_likelihood_climbs_where_the_metric_is_flat() -> None:
    # Every answer is wrong (a flat metric), but the targets grow likelier with the set's worth.
    fake = FakeModel(default="wrong", logprob=lambda messages, target: float(worth(shown_demos(messages))))
    [found] = fewshot(context(fake, [*MINIBATCH, *POOL]), {"candidates": [PARENT]}, **GREEDY, by="likelihood")
    assert {d.input for d in found.demos} == GOOD
    assert all(r.score_target is not None for r in fake.requests)  # scored, never decoded

    flat = FakeModel(default="wrong")
    assert fewshot(context(flat, [*MINIBATCH, *POOL]), {"candidates": [PARENT]}, **GREEDY) == []
    # A model that cannot score answers: the same choice falls back to the metric (flat: nothing).
    assert fewshot(context(flat, [*MINIBATCH, *POOL]), {"candidates": [PARENT]}, **GREEDY, by="likelihood") == []
    assert flat.calls > 0 and all(r.score_target is None for r in flat.requests)


def test_random_and_diverse_make_no_model_call_and_greedy_is_a_scoring_node() -> None:
    fake = FakeModel(fn=landscape)
    for choose in ("random", "diverse"):
        fewshot(context(fake, [*MINIBATCH, *POOL]), {"candidates": [PARENT]}, choose=choose, k=3)
    assert fake.calls == 0
    assert get_operator("fewshot")("f", {"choose": "greedy"}).kind == "score"
    assert get_operator("fewshot")("f", {}).kind == "data"


# -- diversity ---------------------------------------------------------------------------------

CLUSTERS = {
    "sort": [f"sort these words: apple banana cherry date fig {i}" for i in range(8)],
    "close": ["close the brackets: ( [ { <", "close the brackets: [ ( < {"],
    "add": ["add the numbers: 12 plus 30 plus 7", "add the numbers: 5 plus 81 plus 2"],
}
CLUSTER_OF = {text: name for name, texts in CLUSTERS.items() for text in texts}
CLUSTER_POOL = [Example(id=f"c{i}", input=t, target="x") for i, t in enumerate(CLUSTER_OF)]


def test_diverse_keeps_correct_traces_first_then_spreads_over_train() -> None:
    traces = [Trace(example=MINIBATCH[0], output="answer m0", answer="answer m0", score=1.0)]
    ctx = context(FakeModel(), [*MINIBATCH, *CLUSTER_POOL])
    out = fewshot(ctx, {"candidates": [PARENT], "traces": traces}, choose="diverse", max_demos=3, k=5)
    assert len(out) > 1 and all(p.demos[0].input == "question m0" for p in out)  # variants differ, trace first
    assert all(len({CLUSTER_OF[d.input] for d in p.demos[1:]}) == 2 for p in out)  # then two clusters, never one twice


# -- order -------------------------------------------------------------------------------------

ORDER_POOL = [
    Example(id="o0", input="a long input about nothing in particular at all", target="long output here"),
    Example(id="o1", input="question near", target="x"),
    Example(id="o2", input="mid sized input words", target="yy"),
    Example(id="o3", input="other words entirely", target="zzz"),
]


def test_short_first_and_similar_last_orders_are_applied_and_deterministic() -> None:
    def demos(order: str, step: int = 0) -> list[Demo]:
        ctx = context(FakeModel(), [*MINIBATCH, *ORDER_POOL], step=step)
        [program] = fewshot(ctx, {"candidates": [PARENT]}, source="train", max_demos=4, order=order)
        return list(program.demos)

    drawn = demos("drawn")
    shortest = demos("short_first")
    similar = demos("similar_last")
    assert sorted(drawn, key=lambda d: d.input) == sorted(shortest, key=lambda d: d.input) == sorted(similar, key=lambda d: d.input)
    assert [len(d.input) + len(d.output) for d in shortest] == sorted(len(d.input) + len(d.output) for d in drawn)
    assert similar[-1].input == "question near"  # shares "question" with every minibatch input
    assert demos("similar_last") == similar and demos("short_first") == shortest
    assert demos("short_first", step=1) == shortest  # the order does not depend on the draw


def test_similar_last_does_not_count_a_demos_likeness_to_its_own_example() -> None:
    # "alpha one" is a minibatch example's own demo: alike only to itself, it is the least like
    # the other inputs ("alpha two", "alpha three"), and "alpha two three" the most.
    batch = [Example(id=f"a{i}", input=f"alpha {w}", target="t") for i, w in enumerate(("one", "two", "three"))]
    traces = [Trace(example=batch[0], output="t", answer="t", score=1.0)]
    ctx = context(FakeModel(), [*batch, Example(id="x", input="alpha two three", target="t")], minibatch=batch)
    [program] = fewshot(ctx, {"candidates": [PARENT], "traces": traces}, max_demos=2, order="similar_last")
    assert [d.input for d in program.demos] == ["alpha one", "alpha two three"]


# -- catalogue and stored graphs ---------------------------------------------------------------

def test_the_catalogue_lists_the_choice_and_order_params_with_ranges_and_meanings() -> None:
    line = next(l for l in operator_catalogue(["fewshot"]).splitlines() if "params:" in l)
    for text in ("choose='random' [random|diverse|greedy]", "order='drawn' [drawn|similar_last|short_first]",
                 "rounds=2 [1..8]", "tries=4 [1..16]", "by='metric' [metric|likelihood]"):
        assert text in line
    detail = operator_detail("fewshot")
    assert "greedy add/drop" in detail and "log-probability of the targets" in detail


def test_graphs_that_leave_the_new_params_at_their_defaults_keep_their_hash() -> None:
    from graphopt.graph.canonical import canonical_hash
    from graphopt.graph.io import load_graph

    spec = load_graph("fewshot")

    def with_fewshot(**params: Any) -> str:
        nodes = [n.model_copy(update={"params": {**n.params, **params}}) if n.op == "fewshot" else n for n in spec.nodes]
        return canonical_hash(spec.model_copy(update={"nodes": nodes}))

    assert "added_later" not in get_operator("fewshot").Params.model_fields
    assert with_fewshot(choose="random", order="drawn", rounds=2, tries=4, by="metric") == canonical_hash(spec)
    hashes = {with_fewshot(choose="greedy"), with_fewshot(choose="diverse"), with_fewshot(order="similar_last"),
              with_fewshot(choose="greedy", rounds=3), with_fewshot(choose="greedy", by="likelihood")}
    assert len(hashes) == 5 and canonical_hash(spec) not in hashes
