"""Structural mutations: small strategy objects that each propose one edited copy of a graph spec.

Every mutation works from port types and the operator registry, never from operator names, so a
user-registered operator takes part as soon as its ports fit. A proposed child always validates
(`graphopt.graph.validate`) and differs from its parent; a mutation that finds nothing valid to do
returns None. `mutate` tries random mutations until one gives a child and says why the others failed.
The working copy an edit changes is `graph_edit.EditableGraph`; parameter changes come from `params`.

Example:
    >>> import random
    >>> from graphopt.graph.io import load_graph
    >>> child, failed = mutate(load_graph("tgd_select"), default_mutations(), random.Random(0))
    >>> spec_problems(child), child.provenance.mutation in {m.name for m in default_mutations()}
    ([], True)
"""

from __future__ import annotations

__all__ = [
    "Mutate",
    "Mutation",
    "StructuralMutation",
    "EditableGraph",
    "InsertOperator",
    "DeleteOperator",
    "SwapOperator",
    "AddParallelBranch",
    "Rewire",
    "ChangeParams",
    "SEARCH_LIMITS",
    "perturb_param",
    "default_mutations",
    "mutate",
    "spec_problems",
    "child_name",
]

import contextvars
import random
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterator, Sequence
from typing import ClassVar

from ..errors import GraphoptError
from ..graph.spec import INPUT_NODE, EdgeSpec, GraphSpec, NodeSpec
from ..operators.base import Operator
from ..operators.registry import get_operator, operator_names
from .archive import graph_hash

# EditableGraph, spec_problems, child_name, SEARCH_LIMITS and perturb_param live in their own
# modules; they are imported here for the mutations and kept importable from here.
from .graph_edit import EditableGraph, child_name, spec_problems
from .params import SEARCH_LIMITS, default_params_ok, perturb_param, perturbed_params
from .proposal import Proposed, Slot


def _shuffled(items, rng: random.Random) -> list:
    items = list(items)
    rng.shuffle(items)
    return items


# Operators no graph of the run has used yet (set by `mutate(untried=...)`): the edits that bring
# one in are tried before the others, so the search covers the catalogue before it exploits it.
_UNTRIED: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("graphopt_untried_ops", default=frozenset())


def _untried_first(options, rng: random.Random, op_of) -> list:
    """`options` shuffled, those whose operator (`op_of(option)`) is untried first."""
    untried = _UNTRIED.get()
    return sorted(_shuffled(options, rng), key=lambda option: op_of(option) not in untried)


class Mutation(ABC):
    """A structural edit of a graph spec. Implement `propose`; return None when it does not apply.

    `weight` is how often `mutate` draws it relative to the others (1.0 by default).
    """

    name: ClassVar[str] = "mutation"
    weight: ClassVar[float] = 1.0

    @abstractmethod
    def propose(self, parent: GraphSpec, rng: random.Random) -> GraphSpec | None:
        """A valid, different child of `parent`, or None when this mutation cannot apply."""

    def propose_explained(self, parent: GraphSpec, rng: random.Random) -> tuple[GraphSpec | None, str]:
        """Like `propose`, plus the reason when there is no child."""
        child = self.propose(parent, rng)
        return child, "" if child is not None else "not applicable"

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class StructuralMutation(Mutation):
    """A mutation that lists candidate edits in random order; the first valid, changed one wins.

    Subclasses implement `edits`, a generator of (edited working copy, description) pairs.

    Args:
        operators: registry names this mutation may introduce (default: every registered operator).
        max_candidates: candidate edits checked before giving up.
    """

    def __init__(self, operators: Sequence[str] | None = None, max_candidates: int = 24):
        self.operators = list(operators) if operators is not None else None
        self.max_candidates = max_candidates

    def catalog(self) -> list[tuple[str, type[Operator]]]:
        return [(name, get_operator(name)) for name in (self.operators or operator_names())]

    @abstractmethod
    def edits(self, g: EditableGraph, rng: random.Random) -> Iterator[tuple[EditableGraph, str]]:
        """Candidate edits of `g` (never modify `g` itself; edit `g.copy()`)."""

    def propose(self, parent: GraphSpec, rng: random.Random) -> GraphSpec | None:
        return self.propose_explained(parent, rng)[0]

    def propose_explained(self, parent: GraphSpec, rng: random.Random) -> tuple[GraphSpec | None, str]:
        try:
            base = EditableGraph(parent)
            parent_hash = graph_hash(parent)
        except GraphoptError as exc:
            return None, f"parent is not usable: {exc}"
        tried, first = 0, ""
        for g, detail in self.edits(base, rng):
            try:
                child = g.to_spec(parent, self.name, detail)
            except ValueError as exc:  # pydantic rejected the edited data
                problems = [str(exc).splitlines()[0]]
            else:
                problems = spec_problems(child) or (["no change"] if graph_hash(child) == parent_hash else [])
                if not problems:
                    return child, ""
            tried += 1
            first = first or problems[0]
            if tried >= self.max_candidates:
                break
        if not tried:
            return None, "no applicable site"
        return None, f"{tried} candidate edit(s) invalid, e.g. {first}"


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
        for source, target, op, in_port, out_port in _untried_first(options, rng, lambda o: o[2]):
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
        for nid in _shuffled(g.nodes, rng):
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
        for nid, op, cls in _untried_first(options, rng, lambda o: o[1]):
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
        for nid, port in _shuffled(sites, rng):
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
            for op, cls in _untried_first(self._joins(type_), rng, lambda o: o[0]):
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
        for e, src in _shuffled(options, rng):
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
        for nid in _shuffled(g.nodes, rng):
            node = g.nodes[nid]
            params = perturbed_params(g.ops[nid], dict(node.params), rng, self.limits)
            if params is None:
                continue
            h = g.copy()
            h.nodes[nid] = node.model_copy(update={"params": params})
            changed = ", ".join(f"{k}={v}" for k, v in params.items() if node.params.get(k, object()) != v)
            yield h, f"changed {nid} params: {changed}"


def default_mutations() -> list[Mutation]:
    """One of each structural mutation."""
    return [InsertOperator(), DeleteOperator(), SwapOperator(), AddParallelBranch(), Rewire(), ChangeParams()]


class Mutate:
    """The mutation proposer: a child of the slot's one parent by `mutate`, avoiding `slot.taken`.

    Args:
        mutations: the strategies to draw from.
        used_ops: operators some graph of the run has used (grows with the children made here).
        max_tries: mutations tried per proposal.
    """

    def __init__(self, mutations: Sequence[Mutation], used_ops: set[str], max_tries: int = 20):
        self.mutations, self.used_ops, self.max_tries = list(mutations), used_ops, max_tries

    async def propose(self, slot: Slot) -> Proposed:
        (parent,) = slot.parents
        untried = set(operator_names()) - self.used_ops
        child, failed = mutate(parent.spec, self.mutations, slot.rng, max_tries=self.max_tries, avoid=slot.taken, untried=untried)
        if child is not None:
            slot.taken.add(graph_hash(child))
            self.used_ops |= {node.op for node in child.nodes}
        mutation = child.provenance.mutation if child is not None else None
        parents = (parent.candidate_id,) if parent.candidate_id else ()
        return Proposed("mutation", child, parents, mutation, tuple(f"{name}: {why}" for name, why in failed))


def mutate(
    parent: GraphSpec,
    mutations: Sequence[Mutation],
    rng: random.Random,
    max_tries: int = 10,
    avoid: Collection[str] = (),
    untried: Collection[str] = (),
) -> tuple[GraphSpec | None, list[tuple[str, str]]]:
    """Tries random mutations until one gives a valid child that differs from `parent`.

    Args:
        parent: the graph to mutate.
        mutations: the strategies to draw from, each with its `weight`.
        rng: the random source (the same seed gives the same child).
        max_tries: mutations tried before giving up.
        avoid: graph hashes already tried: such a child counts as a failed try, so the
            neighbourhood of a parent is sampled without repeats.
        untried: operators no graph of the run has used: an edit that brings one in (insert,
            swap, a parallel branch's join) is tried before the others of its mutation.

    Returns:
        (child or None, the failed tries as (mutation name, reason)). A child a custom mutation
        returns invalid or unchanged counts as a failed try.
    """
    if not mutations:
        raise ValueError("mutate needs at least one mutation")
    failed: list[tuple[str, str]] = []
    parent_hash = graph_hash(parent)
    pool = list(mutations)
    weights = [max(float(getattr(m, "weight", 1.0)), 0.0) for m in pool]
    for _ in range(max_tries):
        mutation = rng.choices(pool, weights=weights, k=1)[0]
        token = _UNTRIED.set(frozenset(untried))
        try:
            child, reason = mutation.propose_explained(parent, rng)
        except GraphoptError as exc:
            child, reason = None, f"error: {exc}"
        finally:
            _UNTRIED.reset(token)
        if child is not None:
            problems = spec_problems(child)
            if problems:
                child, reason = None, f"invalid: {problems[0]}"
            elif graph_hash(child) == parent_hash:
                child, reason = None, "no change"
            elif graph_hash(child) in avoid:
                child, reason = None, "already tried"
        if child is not None:
            return child, failed
        failed.append((mutation.name, reason))
    return None, failed
