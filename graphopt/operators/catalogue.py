"""The operator catalogue: every operator's ports, parameters (with ranges) and prompts, as text.

The meta model reads `operator_catalogue()` before proposing a graph; `graphopt operators [NAME]`
prints it for people writing graph files, and `operator_detail(name)` adds each port's and
parameter's meaning and each prompt's placeholders and default text.
"""

from __future__ import annotations

__all__ = ["operator_catalogue", "operator_detail", "param_text"]

from typing import Any, Literal, get_args, get_origin

from .registry import get_operator, operator_names


def port_text(name: str, port: Any) -> str:
    flags = [f for f, on in (("optional", not port.required), ("many", port.many)) if on]
    return f"{name}: {port.type}" + (f" ({', '.join(flags)})" if flags else "")


def param_text(name: str, info: Any) -> str:
    """`k=1 [1..32]`, `mode='union' [union|combine]`: the default, then the range or the choices."""
    ann = info.annotation
    default = info.get_default(call_default_factory=True)
    if get_origin(ann) is Literal:
        return f"{name}={default!r} [{'|'.join(map(str, get_args(ann)))}]"
    low = high = None
    for meta in info.metadata:
        for attr, sym in (("ge", ">="), ("gt", ">")):
            if getattr(meta, attr, None) is not None:
                low = f"{sym}{getattr(meta, attr)}"
        for attr, sym in (("le", "<="), ("lt", "<")):
            if getattr(meta, attr, None) is not None:
                high = f"{sym}{getattr(meta, attr)}"
    if low and high and low.startswith(">=") and high.startswith("<="):
        rng = f"{low[2:]}..{high[2:]}"
    else:
        rng = ",".join(b for b in (low, high) if b)
    return f"{name}={default!r}" + (f" [{rng}]" if rng else "")


def operator_catalogue(names: list[str] | None = None) -> str:
    """Every operator as text: name, kind, one-line description, typed ports and parameters."""
    lines = []
    for name in names or operator_names():
        op = get_operator(name)
        summary = next(iter((op.description or "").strip().splitlines()), "")
        lines.append(f"- {name} ({op.kind}): {summary}")
        lines.append("    inputs: " + (", ".join(port_text(p, q) for p, q in op.inputs.items()) or "none"))
        lines.append("    outputs: " + (", ".join(port_text(p, q) for p, q in op.outputs.items()) or "none"))
        params = [param_text(p, info) for p, info in op.Params.model_fields.items()]
        lines.append("    params: " + (", ".join(params) or "none"))
    return "\n".join(lines)




def operator_detail(name: str) -> str:
    """One operator in full: what it does, each port and parameter with its meaning, each prompt
    with its placeholders and default text.

    Raises:
        SpecError: no operator has that name (with the close ones).
    """
    op = get_operator(name)
    lines = [f"{name} ({op.kind}): {(op.description or '').strip()}", ""]
    for title, ports in (("inputs", op.inputs), ("outputs", op.outputs)):
        lines.append(f"{title}:")
        lines += [f"  {port_text(p, q)}" + (f": {q.doc}" if q.doc else "") for p, q in ports.items()] or ["  none"]
    lines.append("params:")
    for field_name, info in op.Params.model_fields.items():
        lines.append(f"  {param_text(field_name, info)}" + (f": {info.description}" if info.description else ""))
    if not op.Params.model_fields:
        lines.append("  none")
    lines.append("prompts (override by name under the node's `prompts`; use only these placeholders):")
    for prompt_name, prompt in op.prompts.items():
        holders = ", ".join("{" + h + "}" for h in sorted(prompt.placeholders())) or "none"
        lines.append(f"  {prompt_name}: {prompt.doc or ''} placeholders: {holders}")
        lines += ["    | " + line for line in prompt.text.splitlines()]
    if not op.prompts:
        lines.append("  none (no model call)")
    return "\n".join(lines)
