"""graphopt.graph.validate: every check names its node, edge or port; the canonical hash."""

from __future__ import annotations

from typing import Any

import pytest
from graph_fixtures import chain_spec, graph_test_operators, reference_dict, reference_spec  # noqa: F401  (registers the t_* operators here)

from graphopt.errors import SpecError
from graphopt.graph.spec import GraphSpec, NodeSpec
from graphopt.graph.validate import canonical_hash, check, validate, validate_node


def spec_with(**changes: Any) -> GraphSpec:
    data = reference_dict()
    data.update(changes)
    return GraphSpec.model_validate(data)


def edited(node_id: str, **fields: Any) -> GraphSpec:
    data = reference_dict()
    for node in data["nodes"]:
        if node["id"] == node_id:
            node.update(fields)
    return GraphSpec.model_validate(data)


def with_edges(*extra: tuple[str, str], drop: tuple[str, str] | None = None) -> GraphSpec:
    data = reference_dict()
    data["edges"] = [e for e in data["edges"] if (e["source"], e["target"]) != drop]
    data["edges"] += [{"source": s, "target": t} for s, t in extra]
    return GraphSpec.model_validate(data)


def test_reference_graph_is_valid_and_check_returns_it():
    spec = reference_spec()
    assert validate(spec) == []
    assert check(spec) is spec


def test_check_raises_spec_error_listing_every_problem():
    spec = edited("crit", op="t_critiqe").model_copy(update={"name": "bad"})
    spec = GraphSpec.model_validate({**spec.model_dump(), "nodes": [*spec.model_dump()["nodes"], {"id": "x", "op": "nope"}]})
    with pytest.raises(SpecError) as info:
        check(spec)
    assert len(info.value.problems) >= 3
    assert info.value.problems == validate(spec)


def test_unknown_operator_suggests_the_close_name():
    problems = validate(edited("crit", op="t_critiqe"))
    assert len(problems) == 1
    assert problems[0].startswith("node crit: unknown operator 't_critiqe' (did you mean 't_critique'")


def test_duplicate_node_ids_are_reported():
    data = reference_dict()
    data["nodes"].append({"id": "rw", "op": "t_rewrite"})
    assert "node rw: duplicate id (used by 2 nodes)" in validate(GraphSpec.model_validate(data))


def test_node_named_input_is_reserved():
    data = reference_dict()
    data["nodes"].append({"id": "input", "op": "t_merge"})
    assert any("'input' is reserved" in p for p in validate(GraphSpec.model_validate(data)))


def test_node_id_with_a_dot_is_rejected():
    data = reference_dict()
    data["nodes"].append({"id": "a.b", "op": "t_merge"})
    assert any(p.startswith("node 'a.b': a node id must be") for p in validate(GraphSpec.model_validate(data)))


@pytest.mark.parametrize("bad", ["a:b", "a|b", "__start__", "__end__", "_x", "1st", "a b", "a@b", "", "x" * 65])
def test_node_ids_langgraph_refuses_are_rejected_by_the_one_rule(bad):
    data = reference_dict()
    data["nodes"].append({"id": bad, "op": "t_merge"})
    assert any("a node id must be" in p for p in validate(GraphSpec.model_validate(data)))


def test_malformed_edge_end_needs_node_dot_port():
    problems = validate(with_edges(("crit", "rw.feedback")))
    assert "edge crit -> rw.feedback: source 'crit' must be written node.port" in problems


def test_dangling_edge_to_unknown_node_suggests_a_name():
    problems = validate(with_edges(("crit.feedback", "rww.feedback")))
    assert "edge crit.feedback -> rww.feedback: unknown target node 'rww' (did you mean 'rw'?)" in problems


def test_unknown_port_names_the_operator_ports_and_suggests_one():
    problems = validate(with_edges(("crit.feedbak", "rw.feedback"), drop=("crit.feedback", "rw.feedback")))
    assert (
        "edge crit.feedbak -> rw.feedback: crit (t_critique) has no output port 'feedbak' "
        "(did you mean 'feedback'?) (its outputs: feedback)"
    ) in problems


def test_unknown_input_port_of_entry_is_reported():
    problems = validate(with_edges(("input.programs", "rw.feedback")))
    assert any("'input' has no output port 'programs' (did you mean 'program'?)" in p for p in problems)


def test_edge_into_input_is_rejected():
    problems = validate(with_edges(("sel.candidates", "input.program")))
    assert any("'input' is the graph's entry and takes no inputs" in p for p in problems)


def test_type_mismatch_names_the_port_and_both_types():
    problems = validate(with_edges(("crit.feedback", "sel.candidates")))
    assert "edge crit.feedback -> sel.candidates: port 'candidates' of sel expects Candidates, got Feedback" in problems


def test_several_edges_into_a_single_port_are_reported():
    problems = validate(with_edges(("sel.candidates", "rw.candidates")))
    assert any(
        p.startswith("node rw: input 'candidates' (Candidates) takes one edge but has 2") for p in problems
    )


def test_many_port_accepts_several_edges():
    assert validate(reference_spec()) == []  # sel.candidates has two edges and is `many`


def test_duplicate_edge_is_reported():
    problems = validate(with_edges(("crit.feedback", "rw.feedback")))
    assert "edge crit.feedback -> rw.feedback: listed 2 times" in problems


def test_missing_required_input_names_node_port_and_type():
    problems = validate(with_edges(drop=("input.program", "crit.candidates")))
    assert "node crit: required input 'candidates' (Candidates) is not connected" in problems


def test_cycle_names_its_nodes_in_order():
    spec = GraphSpec(
        name="cyc",
        nodes=[NodeSpec(id="a", op="t_merge"), NodeSpec(id="b", op="t_merge"), NodeSpec(id="c", op="t_select")],
        edges=[
            {"source": "input.program", "target": "a.candidates"},
            {"source": "a.candidates", "target": "b.candidates"},
            {"source": "b.candidates", "target": "a.candidates"},
            {"source": "b.candidates", "target": "c.candidates"},
        ],
    )
    assert "cycle: a -> b -> a" in validate(spec)


def test_self_loop_is_a_cycle():
    data = chain_spec("t_merge", "t_select").model_dump()
    data["edges"].append({"source": "n1.candidates", "target": "n1.candidates"})
    spec = GraphSpec.model_validate(data)
    assert "cycle: n1 -> n1" in validate(spec)


def test_unreachable_node_is_reported():
    data = reference_dict()
    data["nodes"].append({"id": "lost", "op": "t_merge"})
    data["edges"].append({"source": "lost.candidates", "target": "sel.candidates"})
    assert "node lost: not reachable from 'input'" in validate(GraphSpec.model_validate(data))


def test_two_exits_are_reported():
    data = reference_dict()
    data["nodes"].append({"id": "other", "op": "t_merge"})
    data["edges"].append({"source": "input.program", "target": "other.candidates"})
    assert "graph has 2 exits (sel, other): exactly one node may have no outgoing edges" in validate(
        GraphSpec.model_validate(data)
    )


def test_exit_must_output_candidates():
    spec = GraphSpec(
        name="fb",
        nodes=[NodeSpec(id="crit", op="t_critique")],
        edges=[{"source": "input.program", "target": "crit.candidates"}],
    )
    assert validate(spec) == [
        "exit node crit (t_critique) outputs Feedback; the exit must output Candidates (one port)"
    ]


def test_graph_without_nodes_is_reported():
    assert validate(GraphSpec(name="empty", nodes=[], edges=[])) == ["graph has no nodes"]


def test_graph_whose_nodes_all_feed_each_other_has_no_exit():
    spec = GraphSpec(
        name="loop",
        nodes=[NodeSpec(id="a", op="t_merge")],
        edges=[{"source": "input.program", "target": "a.candidates"}, {"source": "a.candidates", "target": "a.candidates"}],
    )
    problems = validate(spec)
    assert "cycle: a -> a" in problems
    assert any(p.startswith("graph has no exit") for p in problems)


def test_unsupported_schema_version_is_reported():
    assert validate(spec_with(schema_version=2))[0] == "unsupported schema_version 2 (this graphopt reads 1)"


def test_invalid_param_type_names_node_and_field():
    problems = validate(edited("rw", params={"k": "many"}))
    assert problems == ["node rw: param 'k': input should be a valid integer, unable to parse string as an integer"]


def test_param_constraint_violation_names_node_and_field():
    problems = validate(edited("rw", params={"k": 0}))
    assert problems == ["node rw: param 'k': input should be greater than or equal to 1"]


def test_unknown_param_suggests_the_close_name():
    problems = validate(edited("crit", params={"max_failure": 2}))
    assert problems == ["node crit: param 'max_failure': unknown parameter (did you mean 'max_failures'?)"]


def test_unknown_param_of_operator_without_params_says_so():
    problems = validate(GraphSpec.model_validate({**chain_spec("t_merge").model_dump(), "nodes": [{"id": "n1", "op": "t_merge", "params": {"zzz": 1}}]}))
    assert problems == ["node n1: param 'zzz': unknown parameter (t_merge takes no parameters)"]


def test_prompt_override_of_unknown_prompt_is_reported():
    problems = validate(edited("rw", prompts={"rewrit": "Improve {program}"}))
    assert problems == [
        "node rw: prompt 'rewrit': operator t_rewrite has no such prompt (did you mean 'rewrite'?) "
        "(its prompts: history, rewrite)"
    ]


def test_prompt_placeholder_the_operator_does_not_provide_is_reported():
    problems = validate(edited("rw", prompts={"rewrite": "Improve {program} with {critique}"}))
    assert problems == [
        "node rw: prompt 'rewrite': placeholder {critique} is not provided by operator t_rewrite "
        "(it provides {feedback}, {program})"
    ]


def test_prompt_override_may_use_a_subset_and_literal_braces():
    assert validate(edited("rw", prompts={"rewrite": "Improve {program}. Answer as {{\"x\": 1}}."})) == []


@pytest.mark.parametrize("text", ["Improve {program", "Improve program}", "{program!z}"])
def test_malformed_prompt_template_is_an_error(text):
    problems = validate(edited("rw", prompts={"rewrite": text}))
    assert len(problems) == 1
    assert problems[0].startswith("node rw: prompt 'rewrite'")


def test_positional_placeholder_is_an_error():
    problems = validate(edited("rw", prompts={"rewrite": "Improve {}"}))
    assert problems == ["node rw: prompt 'rewrite': positional placeholder {} is not allowed; use a name"]


def test_placeholder_nested_in_format_spec_is_checked():
    problems = validate(edited("rw", prompts={"rewrite": "{program:{width}}"}))
    assert any("placeholder {width} is not provided" in p for p in problems)


def test_validate_node_checks_one_node():
    assert validate_node(NodeSpec(id="x", op="t_rewrite", params={"k": 2})) == []
    [problem] = validate_node(NodeSpec(id="x", op="t_rewrit"))
    assert problem.startswith("node x: unknown operator 't_rewrit' (did you mean 't_rewrite'")


def test_all_problems_are_reported_not_just_the_first():
    data = reference_dict()
    data["nodes"][0]["op"] = "nope"
    data["nodes"][1]["params"] = {"k": -1}
    data["edges"].append({"source": "rw.candidates", "target": "sel.candidate"})
    problems = validate(GraphSpec.model_validate(data))
    assert any("unknown operator 'nope'" in p for p in problems)
    assert any("param 'k'" in p for p in problems)
    assert any("has no input port 'candidate'" in p for p in problems)


# --- canonical hash ----------------------------------------------------------------------------


def renamed(spec: GraphSpec, mapping: dict[str, str]) -> GraphSpec:
    def end(text: str) -> str:
        node, port = text.split(".", 1)
        return f"{mapping.get(node, node)}.{port}"

    data = spec.model_dump()
    for node in data["nodes"]:
        node["id"] = mapping[node["id"]]
    for e in data["edges"]:
        e["source"], e["target"] = end(e["source"]), end(e["target"])
    return GraphSpec.model_validate(data)


def test_canonical_hash_is_invariant_under_renaming_nodes():
    spec = reference_spec()
    other = renamed(spec, {"crit": "c9", "rw": "alpha", "hist": "zz", "sel": "best"})
    assert canonical_hash(other) == canonical_hash(spec)


def test_canonical_hash_is_invariant_under_node_and_edge_order():
    data = reference_dict()
    data["nodes"].reverse()
    data["edges"].reverse()
    data["name"] = "another name"
    assert canonical_hash(GraphSpec.model_validate(data)) == canonical_hash(reference_spec())


def test_canonical_hash_changes_with_params_prompts_and_structure():
    base = canonical_hash(reference_spec())
    assert canonical_hash(edited("rw", params={"k": 3})) != base
    assert canonical_hash(edited("rw", prompts={"rewrite": "Improve {program}"})) != base
    assert canonical_hash(with_edges(drop=("input.program", "sel.candidates"))) != base
    assert canonical_hash(with_edges(drop=("input.traces", "crit.traces"))) != base


def test_canonical_hash_treats_default_params_and_prompts_as_unset():
    data = reference_dict()
    data["nodes"][3]["params"] = {}  # select's k defaults to 1
    data["nodes"][0]["prompts"] = {"critique": "Critique the program:\n{program}\n\nIt failed on:\n{failures}\nBe {style}."}
    assert canonical_hash(GraphSpec.model_validate(data)) == canonical_hash(reference_spec())


def test_canonical_hash_tells_apart_graphs_that_differ_only_in_wiring():
    a = GraphSpec.model_validate({"name": "a", "nodes": [{"id": "x", "op": "t_rewrite"}, {"id": "y", "op": "t_rewrite", "params": {"k": 2}}],
                                  "edges": [{"source": "input.program", "target": "x.candidates"}, {"source": "x.candidates", "target": "y.candidates"}]})
    b = GraphSpec.model_validate({"name": "b", "nodes": [{"id": "x", "op": "t_rewrite"}, {"id": "y", "op": "t_rewrite", "params": {"k": 2}}],
                                  "edges": [{"source": "input.program", "target": "y.candidates"}, {"source": "y.candidates", "target": "x.candidates"}]})
    assert canonical_hash(a) != canonical_hash(b)


def test_canonical_hash_works_on_invalid_specs():
    spec = GraphSpec.model_validate({"name": "x", "nodes": [{"id": "a", "op": "nope", "params": {"k": {"1": [1, 2]}}}],
                                     "edges": [{"source": "ghost", "target": "a.b"}]})
    value = canonical_hash(spec)
    assert len(value) == 32 and value == canonical_hash(spec)


def test_numbers_are_bounded_and_true_is_not_a_number():
    from graphopt.graph.spec import GraphSpec
    from graphopt.graph.validate import validate

    spec = GraphSpec.model_validate({
        "name": "b",
        "nodes": [{"id": "c", "op": "critique", "params": {"max_failures": 10**20, "max_candidates": 10**20}},
                  {"id": "r", "op": "rewrite", "params": {"k": True}}],
        "edges": [{"source": "input.program", "target": "c.candidates"}, {"source": "input.traces", "target": "c.traces"},
                  {"source": "input.program", "target": "r.candidates"}, {"source": "c.feedback", "target": "r.feedback"}],
    })
    problems = validate(spec)
    assert "node c: param 'max_failures': input should be less than or equal to 64" in problems
    assert "node c: param 'max_candidates': input should be less than or equal to 32" in problems
    assert "node r: param 'k' is a number, not true" in problems
