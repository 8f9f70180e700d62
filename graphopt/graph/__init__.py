"""Optimizer graphs as data: the spec, its validation, file I/O and a Python builder.

Example:
    >>> from graphopt.graph import check, load_graph
    >>> check(load_graph("tgd")).name
    'tgd'
"""

from .builder import Graph, NodeHandle, PortRef
from .io import (
    builtin_graph_names,
    dumps_graph,
    graph_from_dict,
    graph_json_schema,
    graph_to_dict,
    load_graph,
    loads_graph,
    save_graph,
)
from .spec import INPUT_NODE, INPUT_PORTS, SPEC_VERSION, EdgeSpec, GraphSpec, NodeSpec, Provenance
from .canonical import canonical_hash
from .validate import check, validate, validate_node

__all__ = [
    "GraphSpec",
    "NodeSpec",
    "EdgeSpec",
    "Provenance",
    "INPUT_NODE",
    "INPUT_PORTS",
    "SPEC_VERSION",
    "validate",
    "validate_node",
    "check",
    "canonical_hash",
    "load_graph",
    "save_graph",
    "loads_graph",
    "dumps_graph",
    "graph_from_dict",
    "graph_to_dict",
    "builtin_graph_names",
    "graph_json_schema",
    "Graph",
    "NodeHandle",
    "PortRef",
]
