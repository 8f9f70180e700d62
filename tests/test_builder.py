"""graphopt.graph.builder: the Python API builds the same spec as a file, and fails on the line at fault."""

from __future__ import annotations

import copy

import pytest
from graph_fixtures import graph_test_operators, reference_spec  # noqa: F401  (registers the t_* operators here)

from graphopt.errors import SpecError
from graphopt.graph.builder import Graph, NodeHandle, PortRef
from graphopt.graph.spec import GraphSpec


def build_reference(use_shift: bool = False) -> Graph:
    g = Graph("reference", description="critique then rewrite; keep the best of old and new")
    crit = g.node("t_critique", id="crit", max_failures=2)
    rw = g.node("t_rewrite", id="rw", k=2, prompts={"rewrite": "Rewrite {program}.\nUse \"{feedback}\" \\ carefully."})
    hist = g.node("t_history", id="hist")
    sel = g.node("t_select", id="sel", k=1)
    if use_shift:
        g.input.program >> crit.candidates
        g.input.traces >> crit.traces
        crit.feedback >> rw.feedback
        g.input.program >> rw.candidates
        g.input.history >> hist.history
        hist.history >> rw.history
        rw.candidates >> sel.candidates
        g.input.program >> sel.candidates
    else:
        g.connect(g.input.program, crit.candidates)
        g.connect(g.input.traces, crit.traces)
        g.connect(crit.feedback, rw.feedback)
        g.connect(g.input.program, rw.candidates)
        g.connect(g.input.history, hist.history)
        g.connect(hist.history, rw.history)
        g.connect(rw.candidates, sel.candidates)
        g.connect(g.input.program, sel.candidates)
    return g


@pytest.mark.parametrize("use_shift", [False, True])
def test_builder_gives_the_same_spec_as_the_file(use_shift):
    assert build_reference(use_shift).build() == reference_spec()


def test_string_port_references_work_too():
    g = Graph("s")
    g.node("t_rewrite", id="rw")
    g.connect("input.program", "rw.candidates")
    assert g.build().edges[0].target == "rw.candidates"


def test_auto_ids_count_per_operator_from_one():
    g = Graph("ids")
    first, second, merge = g.node("t_rewrite"), g.node("t_rewrite"), g.node("t_merge")
    assert (first.id, second.id, merge.id) == ("t_rewrite_1", "t_rewrite_2", "t_merge_1")
    assert first.op == "t_rewrite"


def test_params_can_be_given_as_a_dict_for_clashing_names():
    g = Graph("p")
    g.node("t_rewrite", id="rw", params={"k": 3}, temperature=0.5)
    assert g.build(validate=False).nodes[0].params == {"k": 3, "temperature": 0.5}


def test_unknown_port_attribute_names_the_operator_ports():
    g = Graph("x")
    crit = g.node("t_critique", id="crit")
    with pytest.raises(SpecError) as info:
        crit.feedbak  # noqa: B018
    message = str(info.value)
    assert "node crit (t_critique) has no port 'feedbak' (did you mean 'feedback'?)" in message
    assert "inputs candidates: Candidates, traces: Traces; outputs feedback: Feedback" in message


def test_item_access_reaches_ports_too():
    g = Graph("x")
    crit = g.node("t_critique")
    assert str(crit["feedback"]) == "t_critique_1.feedback"


def test_private_attributes_stay_attribute_errors_for_python_protocols():
    g = Graph("x")
    crit = g.node("t_critique")
    assert not hasattr(crit, "_repr_html_")
    assert isinstance(copy.copy(crit), NodeHandle)
    assert "feedback" in dir(crit)


def test_unknown_operator_fails_at_the_node_call():
    with pytest.raises(SpecError, match=r"unknown operator 't_rewrit' \(did you mean 't_rewrite'"):
        Graph("x").node("t_rewrit")


def test_invalid_params_and_prompts_fail_at_the_node_call():
    g = Graph("x")
    with pytest.raises(SpecError, match="param 'k': input should be greater than or equal to 1"):
        g.node("t_rewrite", k=0)
    with pytest.raises(SpecError, match=r"placeholder \{oops\} is not provided"):
        g.node("t_rewrite", prompts={"rewrite": "{oops}"})


def test_reserved_duplicate_and_dotted_ids_are_refused():
    g = Graph("x")
    g.node("t_merge", id="m")
    with pytest.raises(SpecError, match="reserved"):
        g.node("t_merge", id="input")
    with pytest.raises(SpecError, match="already used"):
        g.node("t_merge", id="m")
    with pytest.raises(SpecError, match="without '.'"):
        g.node("t_merge", id="a.b")


def test_connecting_from_an_input_port_names_the_outputs():
    g = Graph("x")
    crit, rw = g.node("t_critique", id="crit"), g.node("t_rewrite", id="rw")
    with pytest.raises(SpecError) as info:
        g.connect(crit.traces, rw.feedback)
    assert "crit.traces is not an output port (an edge starts at an output; crit outputs: feedback)" in str(info.value)


def test_connecting_into_the_entry_is_refused():
    g = Graph("x")
    sel = g.node("t_select", id="sel")
    with pytest.raises(SpecError, match="input.program is not an input port"):
        sel.candidates >> g.input.program


def test_type_mismatch_fails_at_connect_with_the_validator_message():
    g = Graph("x")
    crit, sel = g.node("t_critique", id="crit"), g.node("t_select", id="sel")
    with pytest.raises(SpecError) as info:
        crit.feedback >> sel.candidates
    assert str(info.value) == (
        "edge crit.feedback -> sel.candidates: port 'candidates' of sel expects Candidates, got Feedback"
    )


def test_second_edge_into_a_single_port_and_duplicate_edges_fail():
    g = Graph("x")
    rw, sel = g.node("t_rewrite", id="rw"), g.node("t_select", id="sel")
    g.input.program >> rw.candidates
    with pytest.raises(SpecError, match="takes one edge and is already connected from input.program"):
        sel.candidates >> rw.candidates
    rw.candidates >> sel.candidates
    with pytest.raises(SpecError, match="already connected"):
        rw.candidates >> sel.candidates


def test_ports_of_another_graph_are_refused():
    a, b = Graph("a"), Graph("b")
    node = a.node("t_rewrite")
    with pytest.raises(SpecError, match="belongs to another Graph"):
        b.connect(b.input.program, node.candidates)


def test_build_reports_every_structural_problem():
    g = Graph("x")
    g.node("t_rewrite", id="rw")
    g.node("t_merge", id="m")
    with pytest.raises(SpecError) as info:
        g.build()
    problems = info.value.problems
    assert "node rw: required input 'candidates' (Candidates) is not connected" in problems
    assert "node m: not reachable from 'input'" in problems
    assert any(p.startswith("graph has 2 exits") for p in problems)


def test_build_without_validation_returns_work_in_progress():
    g = Graph("wip", description="not done")
    g.node("t_rewrite")
    spec = g.build(validate=False)
    assert isinstance(spec, GraphSpec) and spec.description == "not done" and spec.edges == []


def test_port_ref_reads_as_node_dot_port():
    g = Graph("x")
    ref = g.node("t_rewrite", id="rw").candidates
    assert isinstance(ref, PortRef) and str(ref) == "rw.candidates" and repr(ref) == "PortRef('rw.candidates')"
