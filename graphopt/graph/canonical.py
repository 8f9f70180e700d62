"""A structural key of a graph: the same for specs that differ only in node ids or order.

The search caches fitness by it (`graphopt.search.archive.graph_hash`) and records it as a child's
parent in `Provenance.parents`.
"""

from __future__ import annotations

__all__ = ["canonical_hash"]

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from ..operators.registry import get_operator
from .spec import INPUT_NODE, GraphSpec, NodeSpec


# Rounds of plain refinement before long graphs switch to path labels (see canonical_hash).
# Every graph whose refinement settles within them (any graph of diameter below ~2x this: all
# the built-in and searched graphs) keeps the hash earlier versions gave it, so the fitness
# recorded in existing run stores is still found.
PLAIN_ROUNDS = 16
# Graphs with more nodes than this go straight to path labels: no stored hash of one can be
# kept anyway, and plain rounds over thousands of nodes cost seconds.
LARGE_GRAPH = 256


def canonical_hash(spec: GraphSpec) -> str:
    """A hash of the graph's structure, the same for specs that differ only in node ids or order.

    Weisfeiler-Lehman refinement: each node starts from a label of its operator, its effective
    params (defaults filled in) and its effective prompts (override or default), and `input` from
    a fixed label; each round adds the labels of its neighbours along port-typed edges, until
    the number of distinct labels stops growing. The result hashes the sorted labels and the
    sorted labelled edges. Name, description and provenance are not part of it. Meant for valid
    specs; any spec gets a hash.

    A long chain needs a round per two nodes, which made a 1000-node graph take seconds. So after
    `PLAIN_ROUNDS` unsettled rounds (at once for graphs of more than `LARGE_GRAPH` nodes) each label also takes in a digest of everything upstream and
    of everything downstream of its node (one pass each in topological order; nodes on a cycle
    share one mark), and refinement continues for at most `PLAIN_ROUNDS` more rounds: the cost is
    linear in the graph's size and the hash still depends only on the structure.

    Args:
        spec: the graph.

    Returns:
        32 hex characters.

    Example:
        >>> from graphopt.graph import EdgeSpec, GraphSpec, NodeSpec
        >>> a = GraphSpec(name="a", nodes=[NodeSpec(id="x", op="o")], edges=[EdgeSpec(source="input.program", target="x.c")])
        >>> b = GraphSpec(name="b", nodes=[NodeSpec(id="y", op="o")], edges=[EdgeSpec(source="input.program", target="y.c")])
        >>> canonical_hash(a) == canonical_hash(b)
        True
    """
    labels: dict[str, str] = {INPUT_NODE: "input"}
    wired: dict[str, set[str]] = defaultdict(set)
    for edge in spec.edges:
        wired[edge.target_node].add(edge.target_port)
    for node in spec.nodes:
        labels.setdefault(node.id, _digest(_node_label(node, wired[node.id])))
    missing = {e.source_node for e in spec.edges} | {e.target_node for e in spec.edges}
    for node_id in missing - labels.keys():
        labels[node_id] = "missing"
    neighbours: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
    for edge in spec.edges:
        neighbours[edge.source_node].append(("out", edge.source_port, edge.target_port, edge.target_node))
        neighbours[edge.target_node].append(("in", edge.source_port, edge.target_port, edge.source_node))
    plain = PLAIN_ROUNDS if len(labels) <= LARGE_GRAPH else 0
    labels, settled = _refine(labels, neighbours, min(len(labels), plain), _digest)
    if not settled and len(labels) > plain:
        up = _path_labels(labels, neighbours, "in")
        down = _path_labels(labels, neighbours, "out")
        labels = {node_id: _quick_digest([label, up[node_id], down[node_id]]) for node_id, label in labels.items()}
        labels, _ = _refine(labels, neighbours, PLAIN_ROUNDS, _quick_digest)
    edges = sorted(
        (labels[e.source_node], e.source_port, e.target_port, labels[e.target_node]) for e in spec.edges
    )
    return _digest([sorted(labels.values()), edges])[:32]


Neighbours = Mapping[str, list[tuple[str, str, str, str]]]


def _refine(
    labels: dict[str, str], neighbours: Neighbours, rounds: int, digest: Callable[[Any], str]
) -> tuple[dict[str, str], bool]:
    """At most `rounds` refinement rounds; True when the number of distinct labels stopped growing."""
    classes = len(set(labels.values()))
    for _ in range(rounds):
        labels = {
            node_id: digest([label, sorted((d, sp, tp, labels[other]) for d, sp, tp, other in neighbours[node_id])])
            for node_id, label in labels.items()
        }
        refined = len(set(labels.values()))
        if refined == classes:
            return labels, True
        classes = refined
    return labels, False


def _path_labels(labels: dict[str, str], neighbours: Neighbours, direction: str) -> dict[str, str]:
    """Each node's digest of its label and the path labels of its neighbours on the `direction` side.

    Computed in topological order (Kahn's algorithm), so each node and edge is seen once; nodes
    on or behind a cycle, which have no such order, get their label and a fixed mark.
    """
    before = {node_id: [n for n in neighbours.get(node_id, []) if n[0] == direction] for node_id in labels}
    waiting = {node_id: len(items) for node_id, items in before.items()}
    after: dict[str, list[str]] = defaultdict(list)
    for node_id, items in before.items():
        for _, _, _, other in items:
            after[other].append(node_id)
    ready = [node_id for node_id, count in waiting.items() if count == 0]
    out: dict[str, str] = {}
    while ready:
        node_id = ready.pop()
        out[node_id] = _quick_digest([labels[node_id], sorted((sp, tp, out[o]) for _, sp, tp, o in before[node_id])])
        for other in after[node_id]:
            waiting[other] -= 1
            if waiting[other] == 0:
                ready.append(other)
    for node_id in labels.keys() - out.keys():
        out[node_id] = _quick_digest([labels[node_id], "cycle"])
    return out


def _node_label(node: NodeSpec, wired: set[str]) -> list[Any]:
    """The operator, its effective params and the effective text of each prompt it renders.

    A prompt the node never renders in this wiring (rewrite's history section with no history
    edge) is left out, so graphs that behave the same hash the same.
    """
    params: Any = node.params
    prompts: dict[str, str] = dict(node.prompts)
    try:
        op = get_operator(node.op)
        params = op.Params.model_validate(node.params).model_dump(mode="json")
        later = getattr(op.Params, "added_later", frozenset())
        params = {k: v for k, v in params.items() if not (k in later and v == op.Params.model_fields[k].default)}
        rendered = op(node.id, node.params, node.prompts).rendered_prompts(wired)
        prompts = {name: node.prompts.get(name, p.text) for name, p in op.prompts.items() if name in rendered}
    except Exception:  # noqa: BLE001  (invalid nodes still get a label: their raw data)
        pass
    return [node.op, params, prompts]


def _digest(data: Any) -> str:
    try:
        blob = json.dumps(data, sort_keys=True, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):  # mixed key types or a circular value, from Python callers
        blob = repr(data)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def _quick_digest(data: Any) -> str:
    """A digest of lists of strings and tuples of strings (what refinement builds), without JSON."""
    return hashlib.sha256(repr(data).encode("utf-8", "surrogatepass")).hexdigest()
