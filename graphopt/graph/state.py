"""The typed state a compiled optimizer graph passes between its nodes, and its named reducers.

One channel per connected input port, keyed by the edge target as written in the spec
("rewrite.feedback"). A port that takes several edges (`Port(many=True)`) is declared as
`Annotated[list[X], reducer]`, so the merge rule is visible where the state is declared:

    "select.candidates":  Annotated[list[Program], merge_candidates]   # fan-in: concatenated
    "critique.traces":    list[Trace]                                  # one edge: the last value
    "@outputs":           Annotated[dict[str, dict[str, Any]], record_outputs]

"@outputs" keeps every node's outputs by node id (the reserved `input` node included), so a
LangGraph user embedding the graph can read them from the final state.
"""

from __future__ import annotations

__all__ = [
    "OUTPUTS_KEY",
    "PORT_VALUE_TYPES",
    "REDUCERS",
    "merge_candidates",
    "merge_feedback",
    "merge_traces",
    "merge_history",
    "record_outputs",
    "state_schema",
    "is_port_value",
    "summarize",
]

from collections.abc import Callable
from typing import Annotated, Any, TypedDict

from ..errors import CompileError
from ..operators.registry import get_operator
from ..types import Attempt, Feedback, Trace
from ..program.model import Program
from .spec import INPUT_NODE, GraphSpec

OUTPUTS_KEY = "@outputs"  # not a valid node id, so it never collides with one

# The Python value of each port type.
PORT_VALUE_TYPES: dict[str, Any] = {
    "Program": Program,
    "Candidates": list[Program],
    "Feedback": list[Feedback],
    "Traces": list[Trace],
    "History": list[Attempt],
}


def merge_candidates(current: list[Program] | None, new: list[Program] | None) -> list[Program]:
    """Fan-in of Candidates: the lists of every incoming edge, concatenated in arrival order."""
    return [*(current or []), *(new or [])]


def merge_feedback(current: list[Feedback] | None, new: list[Feedback] | None) -> list[Feedback]:
    """Fan-in of Feedback: every critique, concatenated."""
    return [*(current or []), *(new or [])]


def merge_traces(current: list[Trace] | None, new: list[Trace] | None) -> list[Trace]:
    """Fan-in of Traces: every trace, concatenated."""
    return [*(current or []), *(new or [])]


def merge_history(current: list[Attempt] | None, new: list[Attempt] | None) -> list[Attempt]:
    """Fan-in of History: every attempt, concatenated."""
    return [*(current or []), *(new or [])]


def record_outputs(current: dict[str, dict[str, Any]] | None, new: dict[str, dict[str, Any]] | None) -> dict:
    """The outputs of every node so far, by node id (each node writes its own entry once)."""
    return {**(current or {}), **(new or {})}


# The reducer of each list-valued port type, used for ports that take several edges.
REDUCERS: dict[str, Callable[[Any, Any], Any]] = {
    "Candidates": merge_candidates,
    "Feedback": merge_feedback,
    "Traces": merge_traces,
    "History": merge_history,
}


def state_schema(spec: GraphSpec) -> type:
    """The TypedDict of a spec's state: one channel per connected input port, plus "@outputs".

    Raises:
        CompileError: a many-edge port has a type with no reducer (e.g. Program).
    """
    fields: dict[str, Any] = {OUTPUTS_KEY: Annotated[dict[str, dict[str, Any]], record_outputs]}
    for edge in spec.edges:
        if edge.target in fields or edge.target_node == INPUT_NODE:
            continue
        port = get_operator(spec.node(edge.target_node).op).inputs[edge.target_port]
        value_type = PORT_VALUE_TYPES[port.type]
        if port.many:
            reducer = REDUCERS.get(port.type)
            if reducer is None:
                raise CompileError(f"port {edge.target} takes several edges but {port.type} has no reducer")
            fields[edge.target] = Annotated[value_type, reducer]
        else:
            fields[edge.target] = value_type
    return TypedDict(f"{_title(spec.name)}State", fields)  # type: ignore[operator]


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.replace("-", "_").split("_") if part.isidentifier()) or "Graph"


def is_port_value(port_type: str, value: Any) -> bool:
    """Whether `value` is a value of `port_type` (a list port holds only items of its kind)."""
    if port_type == "Program":
        return isinstance(value, Program)
    item = {"Candidates": Program, "Feedback": Feedback, "Traces": Trace, "History": Attempt}.get(port_type)
    return item is not None and isinstance(value, list) and all(isinstance(v, item) for v in value)


def summarize(port_type: str, value: Any, scores: dict[str, float] | None = None) -> Any:
    """A short JSON-ready account of a port value, for step records and the meta prompt optimizer."""
    scores = scores or {}

    def program(p: Program) -> dict[str, Any]:
        out: dict[str, Any] = {"id": p.id, "instruction": p.instruction, "demos": len(p.demos)}
        if p.id in scores:
            out["minibatch_score"] = scores[p.id]
        return out

    if port_type == "Program":
        return program(value)
    if port_type == "Candidates":
        return [program(p) for p in value]
    if port_type == "Feedback":
        return [{"program_id": f.program_id, "text": f.text} for f in value]
    if port_type == "Traces":
        return {"n": len(value), "correct": sum(t.correct for t in value)}
    if port_type == "History":
        return [{"id": a.program.id, "score": a.score, "step": a.step} for a in value]
    return repr(value)[:200]
