"""One cost model for the dry run, the admission of evaluations and studies (`graphopt.search.cost`)."""

from __future__ import annotations

from graphopt.graph.io import load_graph
from graphopt.graph.spec import GraphSpec
from graphopt.search.admission import estimate_unit
from graphopt.search.budgets import estimate, get_budget
from graphopt.search.cost import GENERIC, StepShape, loop_calls, step_shape


def test_a_graph_is_counted_by_what_its_nodes_make() -> None:
    assert step_shape(load_graph("fewshot_rs")) == StepShape(made=8, scored_on_minibatch=9, returned=1, optimizer_calls=0, demos=4)
    assert step_shape(load_graph("bootstrap")) == StepShape(made=1, scored_on_minibatch=1, returned=1, optimizer_calls=0, demos=8)
    assert step_shape(load_graph("tgd")) == StepShape(made=1, scored_on_minibatch=1, returned=1, optimizer_calls=2, demos=0)
    # retrieve and format change the programs they are given: knn makes one, fewshot_format three.
    assert step_shape(load_graph("knn")).made == 1 and step_shape(load_graph("knn")).demos == 3
    assert step_shape(load_graph("fewshot_format")).made == 3
    assert step_shape(None) == GENERIC


def test_a_greedy_fewshot_counts_every_set_it_tries_on_the_minibatch() -> None:
    spec = load_graph("fewshot")
    greedy = {"choose": "greedy", "k": 1, "rounds": 2, "tries": 4, "max_demos": 3}
    spec = spec.model_copy(update={"nodes": [
        n.model_copy(update={"params": {**n.params, **greedy}}) if n.op == "fewshot" else n for n in spec.nodes]})
    # The start set, then 2 rounds of at most 4 additions and 3 drops; the select keeps one.
    assert step_shape(spec) == StepShape(made=1 + 2 * (4 + 3), scored_on_minibatch=2 + 2 * (4 + 3), returned=1,
                                         optimizer_calls=0, demos=3)


def _with_params(spec, op: str, params: dict):
    return spec.model_copy(update={"nodes": [
        n.model_copy(update={"params": {**n.params, **params}}) if n.op == op else n for n in spec.nodes]})


def test_nodes_that_work_on_several_parents_count_each_parent() -> None:
    # fewshot gives k demo sets to each of its first `parents` candidates (an upper bound: fewer may come in)
    assert step_shape(_with_params(load_graph("fewshot_rs"), "fewshot", {"parents": 3})).made == 3 * 8
    # paraphrase asks for n variants of each of its first `parents` candidates: n x parents calls and programs
    spec = GraphSpec.model_validate({"name": "reword", "nodes": [
        {"id": "paraphrase", "op": "paraphrase", "params": {"n": 2, "parents": 3}}, {"id": "select", "op": "select"}],
        "edges": [{"source": "input.program", "target": "paraphrase.candidates"},
                  {"source": "input.program", "target": "select.candidates"},
                  {"source": "paraphrase.candidates", "target": "select.candidates"}]})
    shape = step_shape(spec)
    assert shape.made == 6 and shape.optimizer_calls == 6


def test_a_seed_of_eight_demo_sets_costs_more_than_one_of_three_in_every_estimate() -> None:
    rs, few = step_shape(load_graph("fewshot_rs")), step_shape(load_graph("fewshot"))
    sizes = {"steps": 1, "minibatch": 4, "dev": 8, "final": 8}
    assert loop_calls(rs, **sizes) == (8 + 9 * 4 + 8 + 16, 0) and loop_calls(rs, **sizes)[0] > loop_calls(few, **sizes)[0]
    budget = get_budget("tiny")
    assert estimate_unit(load_graph("fewshot_rs"), budget, 100).program_calls == loop_calls(rs, **sizes)[0]
    one = estimate(get_budget("tiny", seeds=("fewshot",), generations=0, prompt_iterations=0), prompt_tokens=100)
    eight = estimate(get_budget("tiny", seeds=("fewshot_rs",), generations=0, prompt_iterations=0), prompt_tokens=100)
    assert eight["program"]["calls"] - one["program"]["calls"] == (9 - 4) * 4
    # Demos lengthen every prompt: 4 demos of about one example each make a call about 5 prompts long.
    assert eight["program"]["tokens"] > 4 * eight["program"]["calls"] * 100


def test_a_study_graph_cell_uses_the_same_model() -> None:
    from graphopt.study.estimate import estimate_cell
    from graphopt.study.spec import Cell, StudySpec

    study = StudySpec.model_validate({
        "tasks": [{"name": "word_sorting"}],
        "methods": [{"name": "rs", "kind": "graph", "graph": "fewshot_rs"}, {"name": "tgd", "kind": "graph", "graph": "tgd"}],
        "loop": {"steps": 2, "minibatch": 3, "val_limit": 10, "test_limit": 20},
    })
    rs = estimate_cell(study, Cell("word_sorting", "rs", 0), prompt_tokens=100)
    tgd = estimate_cell(study, Cell("word_sorting", "tgd", 0), prompt_tokens=100)
    sizes = {"steps": 2, "minibatch": 3, "dev": 10, "final": 10}
    assert rs["program"]["calls"] == 20 + loop_calls(step_shape(load_graph("fewshot_rs")), **sizes)[0]
    assert tgd["optimizer"]["calls"] == 4 and rs["optimizer"]["calls"] == 0
