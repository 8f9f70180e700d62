"""Operators by name. Built-ins register on first lookup; user operators with `@register_operator`."""

from __future__ import annotations

__all__ = ["register_operator", "get_operator", "operator_names", "OPERATORS"]

import importlib

from ..errors import SpecError, did_you_mean
from ..templates import prompt_placeholders
from .base import PORT_TYPES, Operator, Prompt

OPERATORS: dict[str, type[Operator]] = {}

# Modules of graphopt.operators whose import registers the built-in operators.
BUILTIN_MODULES = ("critique", "rewrite", "ensemble", "select", "paraphrase", "fewshot", "retrieve", "vote", "gate", "history", "format")
_loaded = False


def _load_builtins() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        try:
            importlib.import_module(f"graphopt.operators.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"graphopt.operators.{module}":
                raise


def register_operator(cls: type[Operator]) -> type[Operator]:
    """Class decorator: checks the declaration and makes the operator usable by name in specs.

    Raises:
        SpecError: the class declares an unknown port type or a prompt that is not a valid template.
    """
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name.isidentifier():
        raise SpecError(f"operator class {cls.__name__} needs a `name` that is an identifier")
    for direction, ports in (("input", cls.inputs), ("output", cls.outputs)):
        for port, spec in ports.items():
            if spec.type not in PORT_TYPES:
                raise SpecError(
                    f"operator {name}: {direction} port {port!r} has unknown type {spec.type!r}"
                    f"{did_you_mean(spec.type, PORT_TYPES)}"
                )
    for prompt_name, prompt in cls.prompts.items():
        if not isinstance(prompt, Prompt):
            raise SpecError(f"operator {name}: prompt {prompt_name!r} must be a Prompt")
        try:
            prompt_placeholders(prompt.text)
        except ValueError as exc:
            raise SpecError(f"operator {name}: prompt {prompt_name!r} is not a valid template: {exc}") from exc
    OPERATORS[name] = cls
    return cls


def get_operator(name: str) -> type[Operator]:
    _load_builtins()
    cls = OPERATORS.get(name)
    if cls is None:
        raise SpecError(f"unknown operator {name!r}{did_you_mean(name, OPERATORS)}")
    return cls


def operator_names() -> list[str]:
    _load_builtins()
    return sorted(OPERATORS)
