"""A graph as a Mermaid flowchart: drawn by GitHub, GitLab, many editors and mermaid.live, no
Graphviz needed (`graphopt viz GRAPH -o g.mmd`).

Example:
    >>> from graphopt.graph.io import load_graph
    >>> print(to_mermaid(load_graph("fewshot")).splitlines()[0])
    flowchart LR
"""

from __future__ import annotations

__all__ = ["to_mermaid", "MERMAID_SUFFIXES"]

import json
from typing import Any

from ..graph.spec import INPUT_NODE, GraphSpec

MERMAID_SUFFIXES = (".mmd", ".mermaid")
_ESCAPES = {'"': "#quot;", "<": "#lt;", ">": "#gt;", "\n": " ", "\r": " ", "`": "#96;"}


def _text(value: Any, limit: int = 60) -> str:
    """Label text: escaped for a quoted Mermaid label, cut to `limit` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return "".join(_ESCAPES.get(ch, ch) for ch in text)


def to_mermaid(spec: GraphSpec) -> str:
    """The Mermaid flowchart of the spec: nodes with their operator and params, edges labelled
    `output port -> input port`, from the step's input to its exit node's output (same spec, same text)."""
    ids = {INPUT_NODE: "input"} | {node.id: f"n{i}" for i, node in enumerate(spec.nodes)}
    lines = ["flowchart LR", f'  %% {_text(spec.name, 120)}', '  input(["input"])']
    targets = set()
    for node in spec.nodes:
        params = ", ".join(f"{k}={_text(v, 24)}" for k, v in sorted(node.params.items()))
        label = f"<b>{_text(node.id)}</b><br/>{_text(node.op)}" + (f"<br/>{params}" if params else "")
        if node.prompts:
            label += f"<br/>prompts: {_text(', '.join(sorted(node.prompts)))}"
        lines.append(f'  {ids[node.id]}["{label}"]')
    for edge in spec.edges:
        source, target = ids.get(edge.source_node), ids.get(edge.target_node)
        if source is None or target is None:
            continue  # an edge to an unknown node: `graphopt validate` names it
        targets.add(edge.source_node)
        lines.append(f'  {source} -->|"{_text(edge.source_port)} → {_text(edge.target_port)}"| {target}')
    exits = [node.id for node in spec.nodes if node.id not in targets]
    if len(exits) == 1:
        lines += ['  output(["output"])', f'  {ids[exits[0]]} -->|"candidates"| output']
    return "\n".join(lines) + "\n"
