"""Mutations of a graph's nodes: insert an operator on an edge, delete one, swap one for another."""

from __future__ import annotations

__all__ = ["InsertOperator", "DeleteOperator", "SwapOperator"]

import random
from collections.abc import Iterator

from ...graph.spec import INPUT_NODE, EdgeSpec, NodeSpec
from ..graph_edit import EditableGraph
from ..params import default_params_ok
from .base import StructuralMutation, shuffled, untried_first


class InsertOperator(StructuralMutation):
    """Inserts an operator on an edge (or after the exit) whose ports carry the edge's type through.

    Any registered operator with an input and an output of the edge's type qualifies; its other
    required inputs are fed from outputs that keep the graph acyclic, optional ones sometimes.
    """

    name = "insert"

    def edits(self, g: EditableGraph, rng: random.Random) -> Iterator[tuple[EditableGraph, str]]:
        sites: list[tuple[str, str | None]] = [(e.source, e.target) for e in g.edges]
        for sink in g.sinks():
            port = g.exit_port(sink)
            if port:
                sites.append((f"{sink}.{port}", None))
        options = []
        for source, target in sites:
            type_ = g.source_type(source)
            for op, cls in self.catalog():
                ins = [p for p, port in cls.inputs.items() if port.type == type_]
                outs = [p for p, port in cls.outputs.items() if port.type == (type_ if target else "Candidates")]
                if ins and outs and default_params_ok(cls):
                    ins.sort(key=lambda p: not cls.inputs[p].required)
                    options.append((source, target, op, ins[0], outs[0]))
        for source, target, op, in_port, out_port in untried_first(options, rng, lambda o: o[2]):
            h = g.copy()
            nid = h.fresh_id(op)
            h.add_node(NodeSpec(id=nid, op=op))
            if target is not None:
                h.edges.remove(EdgeSpec(source=source, target=target))
                h.connect(f"{nid}.{out_port}", target)
            h.connect(source, f"{nid}.{in_port}")
            if h.feed_inputs(nid, {in_port}, rng):
                where = f"on {source} -> {target}" if target else f"after the exit {source}"
                yield h, f"inserted {nid} ({op}) {where}"


class DeleteOperator(StructuralMutation):
    """Removes a node, connecting its predecessor of the same type straight to its successors.

    An outgoing edge with no same-typed input to bridge from is dropped when its target port is
    optional; branches left without a consumer are removed. The exit is deleted only when the node
    feeding its Candidates input can become the new exit.
    """

    name = "delete"

    def edits(self, g: EditableGraph, rng: random.Random) -> Iterator[tuple[EditableGraph, str]]:
        sinks = g.sinks()
        for nid in shuffled(g.nodes, rng):
            h = g.copy()
            ins, outs = h.in_edges(nid), h.out_edges(nid)
            new_edges, ok = [], True
            for e in outs:
                type_ = h.source_type(e.source)
                bridges = [i.source for i in ins if h.source_type(i.source) == type_]
                same_port = [b for b in bridges if b.partition(".")[2] == e.source_port]
                if bridges:
                    new_edges.append((rng.choice(same_port or bridges), e.target))
                    continue
                port = h.target_port(e.target)
                others = [x for x in h.edges if x.target == e.target and x != e]
                if port is None or (port.required and not others):
                    ok = False
                    break
            exit_id = sinks[0] if sinks else ""
            if nid in sinks:
                heirs = [i.source_node for i in ins if h.source_type(i.source) == "Candidates"]
                heirs = [n for n in heirs if n != INPUT_NODE]
                if not heirs:
                    continue
                exit_id = rng.choice(heirs)
            if not ok:
                continue
            h.remove_node(nid)
            for source, target in new_edges:
                h.connect(source, target)
            if exit_id in h.nodes:
                h.prune_dangling(keep=exit_id)
            yield h, f"deleted {nid} ({g.nodes[nid].op})"


class SwapOperator(StructuralMutation):
    """Replaces a node's operator with another whose ports take over all the node's connections.

    Ports are matched by name, else by a unique port of the same type; parameters the new operator
    also has are kept when still valid, the rest take defaults; prompt overrides are dropped.
    """

    name = "swap"

    def edits(self, g: EditableGraph, rng: random.Random) -> Iterator[tuple[EditableGraph, str]]:
        options = [(nid, op, cls) for nid in g.nodes for op, cls in self.catalog() if op != g.nodes[nid].op]
        for nid, op, cls in untried_first(options, rng, lambda o: o[1]):
            mapping = g.port_map(nid, cls)
            if mapping is None or not default_params_ok(cls):
                continue
            old = g.nodes[nid]
            params = {k: v for k, v in old.params.items() if k in cls.Params.model_fields}
            try:
                cls.Params.model_validate(params)
            except ValueError:
                params = {}
            h = g.copy()
            new = h.fresh_id(op)  # a new id, so the node's name says what it is
            h.add_node(NodeSpec(id=new, op=op, params=params))
            h.edges = [
                EdgeSpec(
                    source=f"{new}.{mapping[('out', e.source_port)]}" if e.source_node == nid else e.source,
                    target=f"{new}.{mapping[('in', e.target_port)]}" if e.target_node == nid else e.target,
                )
                for e in h.edges
            ]
            del h.nodes[nid], h.ops[nid]
            if h.feed_inputs(new, set(), rng, optional_p=0.0):
                yield h, f"swapped {nid} ({old.op}) for {new} ({op})"
