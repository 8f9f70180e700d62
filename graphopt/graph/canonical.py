"""A structural key of a graph: the same for specs that differ only in node ids or order.

The search caches fitness by it (`graphopt.search.archive.graph_hash`) and records it as a child's
parent in `Provenance.parents`.
"""

from __future__ import annotations

__all__ = ["canonical_hash"]

import hashlib
import json
from collections import defaultdict
from typing import Any

from ..operators.registry import get_operator
from .spec import INPUT_NODE, GraphSpec, NodeSpec


def canonical_hash(spec: GraphSpec) -> str:
    """A hash of the graph's structure, the same for specs that differ only in node ids or order.

    Weisfeiler-Lehman refinement: each node starts from a label of its operator, its effective
    params (defaults filled in) and its effective prompts (override or default), and `input` from
    a fixed label; each round adds the labels of its neighbours along port-typed edges. The result
    hashes the sorted labels and the sorted labelled edges. Name, description and provenance are
    not part of it. Meant for valid specs; any spec gets a hash.

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
    for node in spec.nodes:
        labels.setdefault(node.id, _digest(_node_label(node)))
    missing = {e.source_node for e in spec.edges} | {e.target_node for e in spec.edges}
    for node_id in missing - labels.keys():
        labels[node_id] = "missing"
    neighbours: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
    for edge in spec.edges:
        neighbours[edge.source_node].append(("out", edge.source_port, edge.target_port, edge.target_node))
        neighbours[edge.target_node].append(("in", edge.source_port, edge.target_port, edge.source_node))
    classes = len(set(labels.values()))
    for _ in range(len(labels)):
        labels = {
            node_id: _digest([label, sorted((d, sp, tp, labels[other]) for d, sp, tp, other in neighbours[node_id])])
            for node_id, label in labels.items()
        }
        refined = len(set(labels.values()))
        if refined == classes:
            break
        classes = refined
    edges = sorted(
        (labels[e.source_node], e.source_port, e.target_port, labels[e.target_node]) for e in spec.edges
    )
    return _digest([sorted(labels.values()), edges])[:32]


def _node_label(node: NodeSpec) -> list[Any]:
    params: Any = node.params
    prompts: dict[str, str] = dict(node.prompts)
    try:
        op = get_operator(node.op)
        params = op.Params.model_validate(node.params).model_dump(mode="json")
        prompts = {name: node.prompts.get(name, p.text) for name, p in op.prompts.items()} | prompts
    except Exception:  # noqa: BLE001  (invalid nodes still get a label: their raw data)
        pass
    return [node.op, params, prompts]


def _digest(data: Any) -> str:
    try:
        blob = json.dumps(data, sort_keys=True, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):  # mixed key types or a circular value, from Python callers
        blob = repr(data)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()
