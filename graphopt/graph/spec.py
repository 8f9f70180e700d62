"""GraphSpec: an optimizer graph as plain data (nodes, edges, metadata) that can be saved and checked.

A spec says nothing about how it runs: `graphopt.graph.validate` checks it against the operator
registry and `graphopt.graph.compile` turns a valid one into a LangGraph graph.

Ends of an edge are written "node.port". The reserved node `input` stands for what each step
starts from: `input.program` (Candidates: the current program), `input.traces` (Traces: its
outputs on the minibatch) and `input.history` (History: earlier programs and their scores).
The graph's exit is its one sink node, whose output must be of type Candidates.
"""

from __future__ import annotations

__all__ = [
    "INPUT_NODE",
    "INPUT_PORTS",
    "NODE_ID_PATTERN",
    "NODE_ID_RULE",
    "NodeSpec",
    "EdgeSpec",
    "Provenance",
    "GraphSpec",
    "SPEC_VERSION",
    "is_node_id",
]

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SPEC_VERSION = 1
INPUT_NODE = "input"
# The one node-id rule, shared by the validator, the builder and the LLM proposals' schema: a
# letter, then letters, digits, "_" or "-". It keeps out what LangGraph refuses or reserves
# (":", "|", "__start__", "__end__") and what graphopt's own "node.port" syntax would misread.
NODE_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"
NODE_ID_RULE = "a letter, then up to 63 letters, digits, '_' or '-'"
INPUT_PORTS = {"program": "Candidates", "traces": "Traces", "history": "History"}


class NodeSpec(BaseModel):
    """One node: its id, its operator's registry name, parameter values and prompt overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    op: str
    params: dict[str, Any] = Field(default_factory=dict)
    prompts: dict[str, str] = Field(default_factory=dict)


class EdgeSpec(BaseModel):
    """A directed edge from an output port to an input port, each written "node.port"."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    source: str
    target: str

    @property
    def source_node(self) -> str:
        return self.source.split(".", 1)[0]

    @property
    def source_port(self) -> str:
        return self.source.split(".", 1)[1] if "." in self.source else ""

    @property
    def target_node(self) -> str:
        return self.target.split(".", 1)[0]

    @property
    def target_port(self) -> str:
        return self.target.split(".", 1)[1] if "." in self.target else ""

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}"


class Provenance(BaseModel):
    """Where a graph came from and how it scored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parents: list[str] = Field(default_factory=list)
    mutation: str | None = None
    task: str | None = None
    models: dict[str, str] = Field(default_factory=dict)
    scores: dict[str, float] = Field(default_factory=dict)
    cost: dict[str, Any] = Field(default_factory=dict)


class GraphSpec(BaseModel):
    """An optimizer graph as data. Load with `graphopt.graph.io.load_graph`, check with `validate`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    schema_version: int = SPEC_VERSION
    nodes: list[NodeSpec]
    edges: list[EdgeSpec]
    provenance: Provenance = Field(default_factory=Provenance)

    def node(self, node_id: str) -> NodeSpec:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)


def is_node_id(text: str) -> bool:
    """Whether `text` follows the node-id rule (`NODE_ID_PATTERN`)."""
    return isinstance(text, str) and re.fullmatch(NODE_ID_PATTERN, text) is not None
