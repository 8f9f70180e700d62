"""Mutations of a graph's flow and settings: a parallel branch joined back, an edge rewired, a
parameter changed."""

from __future__ import annotations

__all__ = ["AddParallelBranch", "Rewire", "ChangeParams"]

import random
from collections.abc import Iterator

from ...graph.spec import EdgeSpec, NodeSpec
from ...operators.base import Operator
from ..graph_edit import EditableGraph
from ..params import SEARCH_LIMITS, default_params_ok, perturbed_params
from .base import StructuralMutation, shuffled, untried_first


class AddParallelBranch(StructuralMutation):
    """Duplicates a node (with its private upstream path) into a parallel branch and joins both.

    The join is any registered operator with a `many=True` input and an output of the branch's
    type (a union like `ensemble`, or a scorer like `select`); when the branch already flows into
    such a many-input, the copy is connected to it directly. The copy's parameters are sometimes
    perturbed so the two branches differ.
    """

    name = "parallel"

    def edits(self, g: EditableGraph, rng: random.Random) -> Iterator[tuple[EditableGraph, str]]:
        sinks = g.sinks()
        sites = []
        for nid in g.nodes:
            ports = {e.source_port for e in g.out_edges(nid)}
            if nid in sinks and g.exit_port(nid):
                ports.add(g.exit_port(nid))
            sites += [(nid, p) for p in sorted(ports)]  # sorted: set order varies between runs
        for nid, port in shuffled(sites, rng):
            type_ = g.ops[nid].outputs[port].type
            h = g.copy()
            group = {nid} if rng.random() < 0.5 else h.private_upstream(nid)
            ids: dict[str, str] = {}
            for old in sorted(group):
                ids[old] = h.fresh_id(h.nodes[old].op, reserved=ids.values())
            for old, new in ids.items():
                node = g.nodes[old]
                params = node.params
                if old == nid and rng.random() < 0.5:
                    params = perturbed_params(h.ops[old], node.params, rng, SEARCH_LIMITS) or params
                h.add_node(NodeSpec(id=new, op=node.op, params=params, prompts=node.prompts))
            for e in g.edges:
                if e.target_node in group:
                    src = f"{ids[e.source_node]}.{e.source_port}" if e.source_node in group else e.source
                    h.connect(src, f"{ids[e.target_node]}.{e.target_port}")
            copy_out = f"{ids[nid]}.{port}"
            outs = [e for e in g.edges if e.source == f"{nid}.{port}"]
            if outs and all(h.target_port(e.target).many for e in outs):
                for e in outs:
                    h.connect(copy_out, e.target)
                yield h, f"added branch {ids[nid]} parallel to {nid}"
                continue
            for op, cls in untried_first(self._joins(type_), rng, lambda o: o[0]):
                j = h.copy()
                jid = j.fresh_id(op)
                j.add_node(NodeSpec(id=jid, op=op))
                in_port = next(p for p, q in cls.inputs.items() if q.type == type_ and q.many)
                out_port = next(p for p, q in cls.outputs.items() if q.type == type_)
                j.edges = [EdgeSpec(source=f"{jid}.{out_port}", target=e.target) if e in outs else e for e in j.edges]
                j.connect(f"{nid}.{port}", f"{jid}.{in_port}")
                j.connect(copy_out, f"{jid}.{in_port}")
                if j.feed_inputs(jid, {in_port}, rng):
                    yield j, f"added branch {ids[nid]} parallel to {nid}, joined by {jid} ({op})"
                    break

    def _joins(self, type_: str) -> list[tuple[str, type[Operator]]]:
        return [
            (op, cls)
            for op, cls in self.catalog()
            if any(q.type == type_ and q.many for q in cls.inputs.values())
            and any(q.type == type_ for q in cls.outputs.values())
            and default_params_ok(cls)
        ]


class Rewire(StructuralMutation):
    """Moves one edge's source to another output of the same type that keeps the graph acyclic."""

    name = "rewire"

    def edits(self, g: EditableGraph, rng: random.Random) -> Iterator[tuple[EditableGraph, str]]:
        options = []
        for e in g.edges:
            banned = g.descendants(e.target_node)
            for src in g.sources(g.source_type(e.source) or "", banned):
                if src != e.source and EdgeSpec(source=src, target=e.target) not in g.edges:
                    options.append((e, src))
        for e, src in shuffled(options, rng):
            h = g.copy()
            h.edges[h.edges.index(e)] = EdgeSpec(source=src, target=e.target)
            yield h, f"rewired {e.target} from {e.source} to {src}"


class ChangeParams(StructuralMutation):
    """Changes one numeric or choice parameter of one node within its declared constraints.

    Bounds come from the Params field (`ge`, `le`, ...), narrowed by `limits` (param name ->
    (low, high)), which keeps the search in a sensible range: default `SEARCH_LIMITS`, so `k` and
    `n` stay in 1..5 and temperatures in [0, 1.2] though operators accept more.
    """

    name = "params"
    # Half as often as a change of structure: it nearly always applies and has many variants,
    # so at weight 1 it takes most draws of a structure search while changing no structure.
    weight = 0.5

    def __init__(self, limits: dict[str, tuple[float, float]] | None = None, max_candidates: int = 24):
        super().__init__(max_candidates=max_candidates)
        self.limits = dict(SEARCH_LIMITS if limits is None else limits)

    def edits(self, g: EditableGraph, rng: random.Random) -> Iterator[tuple[EditableGraph, str]]:
        for nid in shuffled(g.nodes, rng):
            node = g.nodes[nid]
            params = perturbed_params(g.ops[nid], dict(node.params), rng, self.limits)
            if params is None:
                continue
            h = g.copy()
            h.nodes[nid] = node.model_copy(update={"params": params})
            changed = ", ".join(f"{k}={v}" for k, v in params.items() if node.params.get(k, object()) != v)
            yield h, f"changed {nid} params: {changed}"
