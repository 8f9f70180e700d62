"""Fuzzing the loader and validator: any input ends in a spec or a GraphoptError, nothing else.

Random text and bytes, random JSON values, and valid specs mutated (nodes dropped or duplicated,
ports renamed, random operator names and param types, extra edges making cycles, broken prompts)
go through loading, validation, the canonical hash, drawing and saving.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from graph_fixtures import TEST_OPS, graph_test_operators, reference_dict  # noqa: F401  (registers the t_* operators here)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphopt.errors import GraphoptError
from graphopt.graph.io import dumps_graph, graph_from_dict, graph_to_dict, loads_graph
from graphopt.graph.spec import GraphSpec
from graphopt.graph.validate import canonical_hash, validate
from graphopt.viz.dot import to_dot

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
names = st.sampled_from([*TEST_OPS, "input", "", "a.b", "crit", "rw", "sel", "hist", "critique", "rewrite"]) | st.text(max_size=8)
ports = st.sampled_from(["candidates", "feedback", "traces", "history", "program", ""]) | st.text(max_size=8)
templates = st.sampled_from(["{program}", "{", "}", "{}", "{0}", "{program!z}", "{program:{x}}", "{{ok}}", "{feedback.x}", "{program[0]}"])


def exercise(spec: GraphSpec) -> None:
    """Everything a loaded spec may go through; each must return or raise a GraphoptError."""
    problems = validate(spec)
    assert all(isinstance(p, str) and "\n" not in p for p in problems)
    assert len(canonical_hash(spec)) == 32
    assert to_dot(spec).startswith("digraph ")
    for fmt in ("json", "yaml"):
        assert loads_graph(dumps_graph(spec, fmt), fmt) == spec
    graph_to_dict(spec)


def load_and_exercise(text: str | bytes, fmt: str) -> None:
    try:
        spec = loads_graph(text, fmt)
    except GraphoptError:
        return
    exercise(spec)


@FUZZ
@given(text=st.text(max_size=200), fmt=st.sampled_from(["json", "yaml"]))
def test_random_text_loads_or_fails_with_a_graphopt_error(text, fmt):
    load_and_exercise(text, fmt)


@FUZZ
@given(data=st.binary(max_size=200), fmt=st.sampled_from(["json", "yaml"]))
def test_random_bytes_load_or_fail_with_a_graphopt_error(data, fmt):
    load_and_exercise(data, fmt)


@FUZZ
@given(value=json_values, fmt=st.sampled_from(["json", "yaml"]))
def test_random_json_values_load_or_fail_with_a_graphopt_error(value, fmt):
    text = json.dumps(value) if fmt == "json" else yaml.safe_dump(value)
    load_and_exercise(text, fmt)


def mutations() -> st.SearchStrategy[tuple[str, Any]]:
    return st.one_of(
        st.tuples(st.just("drop_node"), st.integers(0, 10)),
        st.tuples(st.just("duplicate_node"), st.integers(0, 10)),
        st.tuples(st.just("drop_edge"), st.integers(0, 20)),
        st.tuples(st.just("rename_port"), st.tuples(st.integers(0, 20), st.booleans(), ports)),
        st.tuples(st.just("rename_node"), st.tuples(st.integers(0, 10), names)),
        st.tuples(st.just("op"), st.tuples(st.integers(0, 10), names)),
        st.tuples(st.just("params"), st.tuples(st.integers(0, 10), st.dictionaries(st.sampled_from(["k", "n", "max_failures", "style", "x"]) | st.text(max_size=5), json_values, max_size=3))),
        st.tuples(st.just("prompt"), st.tuples(st.integers(0, 10), st.sampled_from(["rewrite", "critique", "history", "x"]), st.lists(templates | st.text(max_size=10), max_size=4))),
        st.tuples(st.just("edge"), st.tuples(names, ports, names, ports)),
        st.tuples(st.just("field"), st.tuples(st.sampled_from(["name", "nodes", "edges", "schema_version", "provenance", "extra"]), json_values)),
        st.tuples(st.just("node_field"), st.tuples(st.integers(0, 10), st.sampled_from(["id", "op", "params", "prompts", "zzz"]), json_values)),
    )


def mutate(data: dict[str, Any], mutation: tuple[str, Any]) -> None:
    kind, arg = mutation
    nodes, edges = data.get("nodes"), data.get("edges")
    nodes = nodes if isinstance(nodes, list) else []
    edges = edges if isinstance(edges, list) else []
    if kind == "drop_node" and nodes:
        nodes.pop(arg % len(nodes))
    elif kind == "duplicate_node" and nodes:
        nodes.append(copy.deepcopy(nodes[arg % len(nodes)]))
    elif kind == "drop_edge" and edges:
        edges.pop(arg % len(edges))
    elif kind == "rename_port" and edges:
        index, source, port = arg
        edge = edges[index % len(edges)]
        key = "source" if source else "target"
        if isinstance(edge, dict) and isinstance(edge.get(key), str):
            edge[key] = edge[key].split(".", 1)[0] + "." + port
    elif kind in ("rename_node", "op") and nodes:
        index, name = arg
        if isinstance(nodes[index % len(nodes)], dict):
            nodes[index % len(nodes)]["id" if kind == "rename_node" else "op"] = name
    elif kind == "params" and nodes:
        index, params = arg
        if isinstance(nodes[index % len(nodes)], dict):
            nodes[index % len(nodes)]["params"] = params
    elif kind == "prompt" and nodes:
        index, name, pieces = arg
        if isinstance(nodes[index % len(nodes)], dict):
            nodes[index % len(nodes)]["prompts"] = {name: " ".join(pieces)}
    elif kind == "edge":
        a, p, b, q = arg
        edges.append({"source": f"{a}.{p}", "target": f"{b}.{q}"})
    elif kind == "field":
        name, value = arg
        data[name] = value
    elif kind == "node_field" and nodes:
        index, name, value = arg
        if isinstance(nodes[index % len(nodes)], dict):
            nodes[index % len(nodes)][name] = value


@FUZZ
@given(steps=st.lists(mutations(), min_size=1, max_size=5), fmt=st.sampled_from(["json", "yaml", "dict"]))
def test_mutated_specs_validate_or_fail_with_a_graphopt_error(steps, fmt):
    data = reference_dict()
    for step in steps:
        mutate(data, step)
    if fmt == "dict":
        try:
            spec = graph_from_dict(data)
        except GraphoptError:
            return
        exercise(spec)
    else:
        load_and_exercise(json.dumps(data) if fmt == "json" else yaml.safe_dump(data), fmt)


@FUZZ
@given(steps=st.lists(mutations(), min_size=1, max_size=3))
def test_mutated_structure_keeps_problems_named(steps):
    data = reference_dict()
    for step in steps:
        mutate(data, step)
    try:
        spec = graph_from_dict(data)
    except GraphoptError:
        return
    for problem in validate(spec):
        assert problem.startswith(("node ", "edge ", "cycle: ", "graph has ", "exit node ", "unsupported schema_version"))
