"""Operators: the node kinds of an optimizer graph, registered by name."""

from .base import PORT_TYPES, Dropped, Operator, Port, Prompt, StepContext
from .registry import get_operator, operator_names, register_operator

__all__ = [
    "PORT_TYPES",
    "Operator",
    "Port",
    "Prompt",
    "StepContext",
    "Dropped",
    "get_operator",
    "operator_names",
    "register_operator",
]
