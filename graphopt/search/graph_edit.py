"""A working copy of a graph spec that structural edits change, and the checks on the child.

`EditableGraph` answers the type and adjacency questions an edit asks (what feeds this port,
which outputs keep the graph acyclic) and turns the edited copy back into a child spec;
`spec_problems` says whether that child validates. Mutations and crossover both build on it.

Example:
    >>> from graphopt.graph.io import load_graph
    >>> g = EditableGraph(load_graph("tgd_select"))
    >>> child = g.to_spec(load_graph("tgd_select"), "copy", "unchanged")
    >>> spec_problems(child), child.name
    ([], 'tgd_select+copy')
"""

from __future__ import annotations

__all__ = ["EditableGraph", "spec_problems", "child_name"]

import random
from collections.abc import Iterable

from ..errors import GraphoptError
from ..graph.spec import INPUT_NODE, INPUT_PORTS, EdgeSpec, GraphSpec, NodeSpec, Provenance
from ..operators.base import Operator, Port
from ..operators.registry import get_operator
from .archive import graph_hash


def spec_problems(spec: GraphSpec) -> list[str]:
    """The validation problems of a spec (empty when it is valid)."""
    from ..graph.validate import validate

    try:
        return list(validate(spec))
    except GraphoptError as exc:
        return [str(exc)]


def child_name(base: str, tag: str, limit: int = 48) -> str:
    """`base+tag`, shortened to `root+~+last+tag` when a lineage grows long."""
    parts = base.split("+")
    name = "+".join([*parts, tag])
    if len(name) <= limit:
        return name
    name = "+".join([parts[0][:20], "~", *parts[-1:], tag])
    return name[:limit]


class EditableGraph:
    """A mutable working copy of a spec with the type and adjacency queries edits need.

    Raises:
        SpecError: a node names an unknown operator.
    """

    def __init__(self, spec: GraphSpec):
        self.nodes: dict[str, NodeSpec] = {n.id: n for n in spec.nodes}
        self.edges: list[EdgeSpec] = list(spec.edges)
        self.ops: dict[str, type[Operator]] = {n.id: get_operator(n.op) for n in spec.nodes}

    def copy(self) -> EditableGraph:
        new = object.__new__(EditableGraph)
        new.nodes, new.edges, new.ops = dict(self.nodes), list(self.edges), dict(self.ops)
        return new

    def source_type(self, endpoint: str) -> str | None:
        node, _, port = endpoint.partition(".")
        if node == INPUT_NODE:
            return INPUT_PORTS.get(port)
        out = self.ops[node].outputs.get(port) if node in self.ops else None
        return out.type if out else None

    def target_port(self, endpoint: str) -> Port | None:
        node, _, port = endpoint.partition(".")
        return self.ops[node].inputs.get(port) if node in self.ops else None

    def out_edges(self, node: str) -> list[EdgeSpec]:
        return [e for e in self.edges if e.source_node == node]

    def in_edges(self, node: str) -> list[EdgeSpec]:
        return [e for e in self.edges if e.target_node == node]

    def descendants(self, node: str) -> set[str]:
        seen, todo = {node}, [node]
        while todo:
            cur = todo.pop()
            for e in self.edges:
                if e.source_node == cur and e.target_node not in seen:
                    seen.add(e.target_node)
                    todo.append(e.target_node)
        return seen

    def sinks(self) -> list[str]:
        used = {e.source_node for e in self.edges}
        return [n for n in self.nodes if n not in used]

    def exit_port(self, node: str) -> str | None:
        return next((p for p, port in self.ops[node].outputs.items() if port.type == "Candidates"), None)

    def sources(self, type_: str, exclude: set[str]) -> list[str]:
        """Every output endpoint of `type_` on `input` or on a node not in `exclude`."""
        out = [f"{INPUT_NODE}.{p}" for p, t in INPUT_PORTS.items() if t == type_]
        for nid, cls in self.ops.items():
            if nid not in exclude:
                out += [f"{nid}.{p}" for p, port in cls.outputs.items() if port.type == type_]
        return out

    def fresh_id(self, op: str, reserved: Iterable[str] = ()) -> str:
        """`op_N` with the smallest N not used by a node (nor in `reserved`)."""
        taken = set(self.nodes) | set(reserved)
        i = 0
        while f"{op}_{i}" in taken:
            i += 1
        return f"{op}_{i}"

    def private_upstream(self, node: str) -> set[str]:
        """`node` plus the upstream nodes whose outputs feed nothing but that group."""
        group, grew = {node}, True
        while grew:
            grew = False
            for cand in sorted({e.source_node for e in self.edges if e.target_node in group} - group - {INPUT_NODE}):
                if all(e.target_node in group for e in self.out_edges(cand)):
                    group.add(cand)
                    grew = True
        return group

    def port_map(self, nid: str, new: type[Operator]) -> dict[tuple[str, str], str] | None:
        """Maps each connected (direction, port) of node `nid` to a port of operator `new`, by name then type.

    None when some connection finds no port of `new` to take it over.
    """
        mapping: dict[tuple[str, str], str] = {}
        used_in = {}
        for e in self.in_edges(nid):
            used_in[e.target_port] = used_in.get(e.target_port, 0) + 1
        used_out = sorted({e.source_port for e in self.out_edges(nid)})
        if not used_out and self.exit_port(nid):
            used_out = [self.exit_port(nid)]
        old = self.ops[nid]
        for direction, used, old_ports, new_ports in (
            ("in", used_in, old.inputs, new.inputs),
            ("out", used_out, old.outputs, new.outputs),
        ):
            taken: set[str] = set()
            for port in used:
                type_ = old_ports[port].type
                same = port if port in new_ports and new_ports[port].type == type_ else None
                free = [p for p, q in new_ports.items() if q.type == type_ and p not in taken]
                target = same or (free[0] if len(free) == 1 else None)
                if target is None or target in taken:
                    return None
                if direction == "in" and used[port] > 1 and not new_ports[target].many:
                    return None
                mapping[(direction, port)] = target
                taken.add(target)
        return mapping

    def add_node(self, node: NodeSpec) -> None:
        self.nodes[node.id] = node
        self.ops[node.id] = get_operator(node.op)

    def remove_node(self, node: str) -> None:
        del self.nodes[node], self.ops[node]
        self.edges = [e for e in self.edges if node not in (e.source_node, e.target_node)]

    def connect(self, source: str, target: str) -> None:
        edge = EdgeSpec(source=source, target=target)
        if edge not in self.edges:
            self.edges.append(edge)

    def feed_inputs(self, node: str, skip: set[str], rng: random.Random, optional_p: float = 0.5) -> bool:
        """Connects `node`'s unconnected inputs from outputs that keep the graph acyclic.

        Required inputs must find a source (else False); optional ones are fed with `optional_p`.
        """
        connected = {e.target_port for e in self.in_edges(node)} | skip
        banned = self.descendants(node)
        for name, port in self.ops[node].inputs.items():
            if name in connected:
                continue
            options = self.sources(port.type, banned)
            if port.required and not options:
                return False
            if options and (port.required or rng.random() < optional_p):
                self.connect(rng.choice(options), f"{node}.{name}")
        return True

    def prune_dangling(self, keep: str) -> None:
        """Removes nodes left without outgoing edges (dead branches), except the exit `keep`."""
        while True:
            dead = [n for n in self.sinks() if n != keep]
            if not dead:
                return
            for n in dead:
                self.remove_node(n)

    def to_spec(self, parent: GraphSpec, mutation: str, detail: str, other: GraphSpec | None = None) -> GraphSpec:
        """The edited graph as a child spec of `parent` (and `other`, for a crossover)."""
        return GraphSpec(
            name=child_name(parent.name, mutation),
            description=detail,
            nodes=list(self.nodes.values()),
            edges=self.edges,
            provenance=Provenance(
                parents=[graph_hash(p) for p in (parent, other) if p is not None],
                mutation=mutation,
                task=parent.provenance.task,
                models=dict(parent.provenance.models),
            ),
        )
