"""Checking a GraphSpec against the operator registry before anything runs.

`validate` collects every problem, each naming the node, edge or port at fault; `check` raises
them together as one `SpecError`. `canonical_hash`, which keys a graph's structure independently
of its node ids and of the order of its nodes and edges, lives in `canonical` and is re-exported here.

Example:
    >>> from graphopt.graph import GraphSpec, validate
    >>> validate(GraphSpec(name="empty", nodes=[], edges=[]))
    ['graph has no nodes']
"""

from __future__ import annotations

__all__ = ["validate", "validate_node", "check", "canonical_hash"]

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..errors import SpecError, did_you_mean
from ..operators.base import Operator
from ..operators.registry import get_operator
from .canonical import canonical_hash
from .spec import INPUT_NODE, INPUT_PORTS, NODE_ID_RULE, SPEC_VERSION, EdgeSpec, GraphSpec, NodeSpec, is_node_id
from ..templates import template_problems

if TYPE_CHECKING:
    import networkx as nx

OUTPUT_TYPE = "Candidates"  # what the exit node must produce


def check(spec: GraphSpec) -> GraphSpec:
    """Raises if the spec has any problem; returns it unchanged otherwise.

    Args:
        spec: the graph to check.

    Returns:
        The same spec, so `check(load_graph(path))` reads naturally.

    Raises:
        SpecError: with `problems` listing every problem `validate` found.
    """
    problems = validate(spec)
    if problems:
        raise SpecError(problems)
    return spec


def validate(spec: GraphSpec) -> list[str]:
    """Every problem of a spec, one sentence each naming its node, edge or port (empty when valid).

    Checks operator names, node ids, edge ends and port types, fan-in, required inputs, params,
    prompt overrides (their placeholders, format specs and size: see `graphopt.templates`), cycles, reachability from `input` and the one exit.

    Args:
        spec: the graph to check.

    Returns:
        The problems in a stable order: graph-level, nodes, edges, then structure.
    """
    problems: list[str] = []
    if spec.schema_version != SPEC_VERSION:
        problems.append(f"unsupported schema_version {spec.schema_version} (this graphopt reads {SPEC_VERSION})")
    if not spec.nodes:
        problems.append("graph has no nodes")
    ops = _check_nodes(spec.nodes, problems)
    good_edges = _check_edges(spec.edges, ops, problems)
    _check_inputs(spec.nodes, good_edges, ops, problems)
    _check_structure(spec, good_edges, ops, problems)
    return [_one_line(problem) for problem in problems]


# --- nodes -------------------------------------------------------------------------------------


def validate_node(node: NodeSpec) -> list[str]:
    """Problems of one node on its own: its operator, params and prompt overrides.

    Args:
        node: the node to check (its id is only used in the messages).

    Returns:
        The problems, empty when the node is fine.
    """
    try:
        op = get_operator(node.op)
    except SpecError as exc:
        return [f"node {_n(node.id)}: {exc}"]
    return _param_problems(node, op) + _prompt_problems(node, op)


def _check_nodes(nodes: list[NodeSpec], problems: list[str]) -> dict[str, type[Operator] | None]:
    """Checks each node on its own; returns node id -> operator class (None when unknown)."""
    ops: dict[str, type[Operator] | None] = {}
    counts = Counter(node.id for node in nodes)
    for node_id, count in counts.items():
        if count > 1:
            problems.append(f"node {_n(node_id)}: duplicate id (used by {count} nodes)")
    for node in nodes:
        if node.id == INPUT_NODE:
            problems.append(f"node {_n(node.id)}: the id {INPUT_NODE!r} is reserved for the graph's entry")
            continue
        if not is_node_id(node.id):
            problems.append(f"node {_n(node.id)}: a node id must be {NODE_ID_RULE}")
        problems.extend(validate_node(node))
        if node.id not in ops:
            ops[node.id] = _operator_or_none(node.op)
    return ops


def _operator_or_none(name: str) -> type[Operator] | None:
    try:
        return get_operator(name)
    except SpecError:
        return None


def _param_problems(node: NodeSpec, op: type[Operator]) -> list[str]:
    try:
        op.Params.model_validate(node.params)
    except ValidationError as exc:
        fields = list(op.Params.model_fields)
        out = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            hint = did_you_mean(where, fields) if error["type"] == "extra_forbidden" else ""
            message = "unknown parameter" if error["type"] == "extra_forbidden" else _lower(error["msg"])
            allowed = f" ({node.op} takes {_names(fields) or 'no parameters'})" if not hint and error["type"] == "extra_forbidden" else ""
            if not where:  # a check of the whole set names its parameter itself
                out.append(f"node {_n(node.id)}: {message.removeprefix('value error, ')}")
                continue
            out.append(f"node {_n(node.id)}: param {where!r}: {message}{hint}{allowed}")
        return out
    except Exception as exc:  # noqa: BLE001  (an operator's own validator may raise anything)
        return [f"node {_n(node.id)}: params could not be checked: {type(exc).__name__}: {exc}"]
    return []


def _prompt_problems(node: NodeSpec, op: type[Operator]) -> list[str]:
    out = []
    for name, text in node.prompts.items():
        default = op.prompts.get(name)
        where = f"node {_n(node.id)}: prompt {name!r}"
        if default is None:
            known = _names(op.prompts) or "none"
            out.append(
                f"{where}: operator {op.name} has no such prompt{did_you_mean(name, op.prompts)} (its prompts: {known})"
            )
            continue
        out.extend(template_problems(where, text, default, op.name))
    return out


# --- edges -------------------------------------------------------------------------------------


def _check_edges(
    edges: list[EdgeSpec], ops: dict[str, type[Operator] | None], problems: list[str]
) -> list[EdgeSpec]:
    """Checks each edge's ends and types; returns the edges between known nodes (for structure)."""
    good = []
    seen: Counter[tuple[str, str]] = Counter((e.source, e.target) for e in edges)
    for (source, target), count in seen.items():
        if count > 1:
            problems.append(f"edge {source} -> {target}: listed {count} times")
    for edge in dict.fromkeys(edges):
        where = f"edge {edge}"
        ends_ok = True
        for end, text in (("source", edge.source), ("target", edge.target)):
            node, _, port = text.partition(".")
            if not node or not port:
                problems.append(f"{where}: {end} {text!r} must be written node.port")
                ends_ok = False
        if not ends_ok:
            continue
        source_type = _end_type(edge.source_node, edge.source_port, "output", ops, where, problems)
        target_type = _end_type(edge.target_node, edge.target_port, "input", ops, where, problems)
        if edge.source_node in ops or edge.source_node == INPUT_NODE:
            if edge.target_node in ops:
                good.append(edge)
        if source_type and target_type and source_type != target_type:
            problems.append(
                f"{where}: port {edge.target_port!r} of {edge.target_node} expects {target_type}, got {source_type}"
            )
    return good


def _end_type(
    node: str, port: str, direction: str, ops: dict[str, type[Operator] | None], where: str, problems: list[str]
) -> str | None:
    """The type of one edge end, or None after recording why it has none."""
    if node == INPUT_NODE:
        if direction == "input":
            problems.append(f"{where}: {INPUT_NODE!r} is the graph's entry and takes no inputs")
            return None
        ports = INPUT_PORTS
        owner = f"{INPUT_NODE!r}"
    elif node in ops:
        op = ops[node]
        if op is None:
            return None  # unknown operator, reported with its node
        ports = {name: p.type for name, p in (op.outputs if direction == "output" else op.inputs).items()}
        owner = f"{node} ({op.name})"
    else:
        choices = [*ops, INPUT_NODE] if direction == "output" else list(ops)
        problems.append(f"{where}: unknown {'source' if direction == 'output' else 'target'} node {node!r}"
                        f"{did_you_mean(node, choices)}")
        return None
    if port not in ports:
        listed = _names(ports) or "none"
        problems.append(
            f"{where}: {owner} has no {direction} port {port!r}{did_you_mean(port, ports)} "
            f"(its {direction}s: {listed})"
        )
        return None
    return ports[port]


def _check_inputs(
    nodes: list[NodeSpec], edges: list[EdgeSpec], ops: dict[str, type[Operator] | None], problems: list[str]
) -> None:
    """Fan-in of each input port: required ones connected, single ones connected once."""
    incoming: dict[tuple[str, str], list[str]] = defaultdict(list)
    for edge in edges:
        incoming[(edge.target_node, edge.target_port)].append(edge.source)
    for node_id, op in ops.items():
        if op is None:
            continue
        for name, port in op.inputs.items():
            sources = incoming.get((node_id, name), [])
            if port.required and not sources:
                problems.append(f"node {_n(node_id)}: required input {name!r} ({port.type}) is not connected")
            if not port.many and len(set(sources)) > 1:
                problems.append(
                    f"node {_n(node_id)}: input {name!r} ({port.type}) takes one edge but has {len(set(sources))}"
                    f" (from {', '.join(sorted(set(sources)))}); use a merge operator such as ensemble"
                )


# --- structure ---------------------------------------------------------------------------------


def _check_structure(
    spec: GraphSpec, edges: list[EdgeSpec], ops: dict[str, type[Operator] | None], problems: list[str]
) -> None:
    """Cycles, reachability from `input`, and the one exit that outputs Candidates."""
    import networkx as nx  # imported here: it is slow to import and only validation needs it

    graph = nx.DiGraph()
    graph.add_node(INPUT_NODE)
    graph.add_nodes_from(ops)
    graph.add_edges_from((e.source_node, e.target_node) for e in edges)
    for cycle in _cycles(graph):
        problems.append("cycle: " + " -> ".join([*cycle, cycle[0]]))
    reachable = nx.descendants(graph, INPUT_NODE)
    for node_id in ops:
        if node_id not in reachable:
            problems.append(f"node {_n(node_id)}: not reachable from {INPUT_NODE!r}")
    if not ops:
        return
    sinks = [n for n in ops if graph.out_degree(n) == 0]
    if not sinks:
        problems.append("graph has no exit: every node feeds another, but exactly one must have no outgoing edges")
    elif len(sinks) > 1:
        problems.append(
            f"graph has {len(sinks)} exits ({', '.join(sinks)}): exactly one node may have no outgoing edges"
        )
    else:
        exit_op = ops[sinks[0]]
        if exit_op is not None:
            types = [p.type for p in exit_op.outputs.values()]
            if types.count(OUTPUT_TYPE) != 1:
                got = ", ".join(types) or "nothing"
                problems.append(
                    f"exit node {sinks[0]} ({exit_op.name}) outputs {got}; the exit must output {OUTPUT_TYPE} (one port)"
                )


def _cycles(graph: nx.DiGraph) -> list[list[str]]:
    """One cycle per strongly connected component that has one, each starting at its smallest id."""
    import networkx as nx

    found = []
    for component in nx.strongly_connected_components(graph):
        sub = graph.subgraph(component)
        if len(component) == 1 and not sub.has_edge(next(iter(component)), next(iter(component))):
            continue
        start = min(component)
        cycle = [u for u, _ in nx.find_cycle(sub, source=start)]
        first = cycle.index(min(cycle))
        found.append(cycle[first:] + cycle[:first])
    return sorted(found)


def _names(items: Any) -> str:
    return ", ".join(sorted(str(item) for item in items))


def _n(node_id: str) -> str:
    """A node id as written in messages: plain when it is a plain name, quoted otherwise."""
    plain = node_id and all(c.isalnum() or c in "_-" for c in node_id) and node_id.isascii()
    return node_id if plain else repr(node_id)


def _one_line(text: str) -> str:
    """Names may hold line breaks; a problem is printed as one line."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _lower(message: str) -> str:
    return message[:1].lower() + message[1:]
