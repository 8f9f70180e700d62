"""A short Python API for writing graph specs: nodes are handles, their ports are attributes.

Example:
    >>> g = Graph("my_tgd", description="critique then rewrite")
    >>> crit = g.node("critique")
    >>> rw = g.node("rewrite", k=2)
    >>> g.input.program >> crit.candidates
    >>> g.input.traces >> crit.traces
    >>> crit.feedback >> rw.feedback
    >>> g.connect(g.input.program, rw.candidates)
    >>> spec = g.build()  # a validated GraphSpec
    >>> [node.id for node in spec.nodes]
    ['critique_1', 'rewrite_1']

Mistakes that can be seen on one line (an unknown operator, port or param, a port used in the
wrong direction, mismatched types) raise `SpecError` right there; the rest (required inputs,
reachability, the one exit) are checked by `build`.
"""

from __future__ import annotations

__all__ = ["Graph", "NodeHandle", "PortRef"]

from typing import Any

from ..errors import SpecError, did_you_mean
from ..operators.registry import get_operator
from .spec import INPUT_NODE, INPUT_PORTS, EdgeSpec, GraphSpec, NodeSpec
from .validate import check, validate_node


class PortRef:
    """One port of one node, written `handle.port`; `a.out >> b.inp` connects them."""

    __slots__ = ("_graph", "node", "port")

    def __init__(self, graph: Graph, node: str, port: str):
        self._graph = graph
        self.node = node
        self.port = port

    def __rshift__(self, target: PortRef) -> None:
        self._graph.connect(self, target)

    def __str__(self) -> str:
        return f"{self.node}.{self.port}"

    def __repr__(self) -> str:
        return f"PortRef({str(self)!r})"


class NodeHandle:
    """A node added to a `Graph`. Ports are attributes (`h.feedback`) or items (`h["feedback"]`)."""

    def __init__(self, graph: Graph, node_id: str, op: str, inputs: dict[str, str], outputs: dict[str, str]):
        self._graph = graph
        self._id = node_id
        self._op = op
        self._inputs = inputs
        self._outputs = outputs

    @property
    def id(self) -> str:
        """The node's id in the spec."""
        return self._id

    @property
    def op(self) -> str:
        """The node's operator name."""
        return self._op

    def __getitem__(self, port: str) -> PortRef:
        if port not in self._inputs and port not in self._outputs:
            ports = sorted({*self._inputs, *self._outputs})
            raise SpecError(
                f"node {self._id} ({self._op}) has no port {port!r}{did_you_mean(port, ports)}; {self._ports_text()}"
            )
        return PortRef(self._graph, self._id, port)

    def __getattr__(self, port: str) -> PortRef:
        if port.startswith("_"):  # keep Python's protocols (copy, pickle, IPython _repr_*_) working
            raise AttributeError(port)
        return self[port]

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._inputs, *self._outputs})

    def __repr__(self) -> str:
        return f"<node {self._id} ({self._op}): {self._ports_text()}>"

    def _ports_text(self) -> str:
        inputs = ", ".join(f"{n}: {t}" for n, t in self._inputs.items()) or "none"
        outputs = ", ".join(f"{n}: {t}" for n, t in self._outputs.items()) or "none"
        return f"inputs {inputs}; outputs {outputs}"


class Graph:
    """Builds a `GraphSpec` node by node; `build()` validates it.

    Args:
        name: the graph's name (used in file names and reports).
        description: one line on what the graph does.
    """

    def __init__(self, name: str, description: str = ""):
        self.name = name
        self.description = description
        self._nodes: dict[str, NodeSpec] = {}
        self._handles: dict[str, NodeHandle] = {}
        self._edges: list[EdgeSpec] = []
        self._input = NodeHandle(self, INPUT_NODE, INPUT_NODE, {}, dict(INPUT_PORTS))

    @property
    def input(self) -> NodeHandle:
        """The reserved entry node: ports `program` (Candidates), `traces` and `history`."""
        return self._input

    def node(
        self,
        op: str,
        *,
        id: str | None = None,  # noqa: A002  (the spec's field name reads best here)
        prompts: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> NodeHandle:
        """Adds a node and returns its handle.

        Args:
            op: operator name, e.g. "rewrite".
            id: node id; by default `<op>_<n>` with the first free n from 1.
            prompts: prompt overrides by name (only the operator's placeholders).
            params: parameters as a dict (for names that clash with the arguments above).
            **kwargs: parameters, e.g. `k=2`.

        Raises:
            SpecError: unknown operator, taken or reserved id, invalid params or prompts.
        """
        cls = get_operator(op)
        node_id = self._new_id(op) if id is None else id
        if node_id == INPUT_NODE:
            raise SpecError(f"node id {INPUT_NODE!r} is reserved for the graph's entry")
        if node_id in self._nodes:
            raise SpecError(f"node id {node_id!r} is already used")
        if not node_id or "." in node_id or node_id != node_id.strip():
            raise SpecError(f"node id {node_id!r}: an id must be non-empty, without '.' or surrounding spaces")
        fields: dict[str, Any] = {"id": node_id, "op": op}
        values = {**(params or {}), **kwargs}
        if values:
            fields["params"] = values
        if prompts:
            fields["prompts"] = dict(prompts)
        spec = NodeSpec(**fields)
        problems = validate_node(spec)
        if problems:
            raise SpecError(problems)
        self._nodes[node_id] = spec
        handle = NodeHandle(self, node_id, op, _port_types(cls.inputs), _port_types(cls.outputs))
        self._handles[node_id] = handle
        return handle

    def connect(self, source: PortRef | str, target: PortRef | str) -> None:
        """Adds an edge from an output port to an input port.

        Args:
            source: `handle.port` or "node.port" of an output (or of `g.input`).
            target: `handle.port` or "node.port" of an input.

        Raises:
            SpecError: unknown node or port, wrong direction, mismatched types, a duplicate edge, or
                a second edge into an input that takes one.
        """
        src, dst = self._ref(source), self._ref(target)
        edge = EdgeSpec(source=str(src), target=str(dst))
        where = f"edge {edge}"
        source_type = self._port_type(src, "output", where)
        target_type = self._port_type(dst, "input", where)
        if source_type != target_type:
            raise SpecError(f"{where}: port {dst.port!r} of {dst.node} expects {target_type}, got {source_type}")
        if edge in self._edges:
            raise SpecError(f"{where}: already connected")
        port = get_operator(self._nodes[dst.node].op).inputs[dst.port]
        taken = [e.source for e in self._edges if e.target == edge.target]
        if taken and not port.many:
            raise SpecError(f"{where}: input {dst} takes one edge and is already connected from {taken[0]}")
        self._edges.append(edge)

    def build(self, *, validate: bool = True) -> GraphSpec:
        """The spec, validated unless `validate=False` (e.g. to save work in progress).

        Raises:
            SpecError: every problem of the graph, when it does not validate.
        """
        fields: dict[str, Any] = {"name": self.name, "nodes": list(self._nodes.values()), "edges": list(self._edges)}
        if self.description:
            fields["description"] = self.description
        spec = GraphSpec(**fields)
        return check(spec) if validate else spec

    def _new_id(self, op: str) -> str:
        n = 1
        while f"{op}_{n}" in self._nodes:
            n += 1
        return f"{op}_{n}"

    def _ref(self, ref: PortRef | str) -> PortRef:
        if isinstance(ref, PortRef):
            if ref._graph is not self:
                raise SpecError(f"port {ref} belongs to another Graph")
            return ref
        if isinstance(ref, str):
            node, _, port = ref.partition(".")
            if not node or not port:
                raise SpecError(f"port {ref!r} must be written node.port")
            handle = self._input if node == INPUT_NODE else self._handles.get(node)
            if handle is None:
                raise SpecError(f"unknown node {node!r}{did_you_mean(node, [*self._handles, INPUT_NODE])}")
            return handle[port]
        raise SpecError(f"expected a port such as node.feedback, got {type(ref).__name__}")

    def _port_type(self, ref: PortRef, direction: str, where: str) -> str:
        handle = self._input if ref.node == INPUT_NODE else self._handles[ref.node]
        ports = handle._outputs if direction == "output" else handle._inputs
        if ref.port not in ports:
            listed = ", ".join(ports) or "none"
            end = "starts at an output" if direction == "output" else "ends at an input"
            raise SpecError(f"{where}: {ref} is not an {direction} port (an edge {end}; {ref.node} {direction}s: {listed})")
        return ports[ref.port]


def _port_types(ports: dict[str, Any]) -> dict[str, str]:
    return {name: port.type for name, port in ports.items()}
