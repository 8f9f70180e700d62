"""Crossover: a child graph built from two parents by exchanging subgraphs at type-compatible cuts.

A *segment* of a graph is a node plus, optionally, the upstream nodes that feed only it: a piece
whose only way out is one output port of one type (or the graph's exit). `SubgraphCrossover`
replaces a segment of parent `a` with a copy of a segment of parent `b` whose way out has the same
type, reconnects the copy's inputs to outputs of `a` of the same types, and keeps the child when
it validates and differs from both parents.

Example:
    >>> import random
    >>> from graphopt.graph.io import load_graph
    >>> child = SubgraphCrossover().cross(load_graph("tgd"), load_graph("opro"), random.Random(0))
    >>> spec_problems(child), child.provenance.mutation
    ([], 'crossover')
"""

from __future__ import annotations

__all__ = ["Crossover", "SubgraphCrossover", "Segment", "segments"]

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from ..errors import GraphoptError
from ..graph.spec import INPUT_NODE, GraphSpec, NodeSpec
from .archive import graph_hash
from .graph_edit import EditableGraph, spec_problems
from .proposal import Proposed, Slot


class Crossover(ABC):
    """Combines two parent graphs into a child; None when it finds no valid combination."""

    name: ClassVar[str] = "crossover"

    @abstractmethod
    def cross(self, a: GraphSpec, b: GraphSpec, rng: random.Random) -> GraphSpec | None:
        """A valid child of `a` and `b` that differs from both, or None."""

    async def propose(self, slot: Slot) -> Proposed:
        """The crossover proposer: a child of the slot's two parents that is not in `slot.taken`."""
        a, b = slot.parents
        child = self.cross(a.spec, b.spec, slot.rng)
        if child is not None and graph_hash(child) in slot.taken:
            child = None
        if child is not None:
            slot.taken.add(graph_hash(child))
        parents = tuple(p.candidate_id for p in (a, b) if p.candidate_id)
        return Proposed("crossover", child, parents, self.name, ("no new graph from these cut points",))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@dataclass(frozen=True)
class Segment:
    """Nodes whose only outgoing edges leave from `out_node.out_port` (of type `type`)."""

    nodes: frozenset[str]
    out_node: str
    out_port: str
    type: str
    is_exit: bool


def segments(g: EditableGraph) -> list[Segment]:
    """Every segment of a graph: each used output port alone, and with its private upstream nodes."""
    sinks = g.sinks()
    found: list[Segment] = []
    for nid in g.nodes:
        ports = {e.source_port for e in g.out_edges(nid)}
        is_exit = nid in sinks
        if is_exit and g.exit_port(nid):
            ports = {g.exit_port(nid)}
        if len(ports) != 1:  # a node feeding out through several ports is not a clean cut
            continue
        port = ports.pop()
        group = g.private_upstream(nid)
        type_ = g.ops[nid].outputs[port].type
        found.append(Segment(frozenset({nid}), nid, port, type_, is_exit))
        if len(group) > 1:
            found.append(Segment(frozenset(group), nid, port, type_, is_exit))
    return found


def _splice(ga: EditableGraph, sa: Segment, gb: EditableGraph, sb: Segment, rng: random.Random) -> EditableGraph | None:
    """`ga` with segment `sa` replaced by a copy of `gb`'s segment `sb`, or None if inputs cannot be fed."""
    h = ga.copy()
    leaving = [e for e in h.edges if e.source == f"{sa.out_node}.{sa.out_port}"]
    banned = h.descendants(sa.out_node)
    exit_id = next(iter(h.sinks()), "")
    for nid in sa.nodes:
        h.remove_node(nid)
    ids: dict[str, str] = {}
    for old in sorted(sb.nodes):
        node = gb.nodes[old]
        ids[old] = old if old not in h.nodes else h.fresh_id(node.op)
        h.add_node(NodeSpec(id=ids[old], op=node.op, params=node.params, prompts=node.prompts))
    banned |= set(ids.values())
    for e in gb.edges:
        if e.target_node not in sb.nodes:
            continue
        target = f"{ids[e.target_node]}.{e.target_port}"
        if e.source_node in sb.nodes:
            h.connect(f"{ids[e.source_node]}.{e.source_port}", target)
            continue
        if e.source_node == INPUT_NODE:
            h.connect(e.source, target)
            continue
        fed = {x.source for x in h.edges if x.target == target}
        options = [s for s in h.sources(gb.source_type(e.source) or "", banned) if s not in fed]
        if not options:
            port = h.target_port(target)
            if fed or (port is not None and not port.required):  # already fed, or can do without
                continue
            return None
        op = gb.nodes[e.source_node].op
        same_op = [s for s in options if h.nodes.get(s.partition(".")[0], NodeSpec(id="", op="")).op == op]
        h.connect(rng.choice(same_op or options), target)
    new_out = f"{ids[sb.out_node]}.{sb.out_port}"
    for e in leaving:
        h.connect(new_out, e.target)
    h.prune_dangling(keep=ids[sb.out_node] if sa.is_exit else exit_id)
    return h


class SubgraphCrossover(Crossover):
    """Replaces one segment of parent `a` with a type-compatible segment of parent `b`.

    Args:
        max_candidates: (segment of a, segment of b) pairs tried before giving up.
    """

    name = "crossover"

    def __init__(self, max_candidates: int = 32):
        self.max_candidates = max_candidates

    def cross(self, a: GraphSpec, b: GraphSpec, rng: random.Random) -> GraphSpec | None:
        return self.cross_explained(a, b, rng)[0]

    def cross_explained(self, a: GraphSpec, b: GraphSpec, rng: random.Random) -> tuple[GraphSpec | None, str]:
        """Like `cross`, plus the reason when there is no child."""
        try:
            ga, gb = EditableGraph(a), EditableGraph(b)
            known = {graph_hash(a), graph_hash(b)}
        except GraphoptError as exc:
            return None, f"parent is not usable: {exc}"
        pairs = [
            (sa, sb)
            for sa in segments(ga)
            for sb in segments(gb)
            # a whole graph as a segment would make the child a copy of one parent
            if sa.type == sb.type and sa.nodes != set(ga.nodes) and sb.nodes != set(gb.nodes)
        ]
        rng.shuffle(pairs)
        tried, first = 0, "no type-compatible segments"
        for sa, sb in pairs[: self.max_candidates]:
            tried += 1
            h = _splice(ga, sa, gb, sb, rng)
            if h is None:
                first = "a segment's inputs found no source of their type"
                continue
            detail = (
                f"{a.name} with {'+'.join(sorted(sa.nodes))} replaced by "
                f"{'+'.join(sorted(sb.nodes))} from {b.name}"
            )
            try:
                child = h.to_spec(a, self.name, detail, other=b)
            except ValueError as exc:
                first = str(exc).splitlines()[0]
                continue
            problems = spec_problems(child)
            if not problems and graph_hash(child) not in known:
                return child, ""
            first = problems[0] if problems else "same as a parent"
        return None, f"{tried} combination(s) tried, e.g. {first}"
