"""Parameter perturbation: a nearby, still valid value for one field of an operator's Params.

Bounds come from the pydantic field (`ge`, `gt`, `le`, `lt`), narrowed by the search's own limits
(`SEARCH_LIMITS` by default), so a search stays in a sensible range though operators accept more.

Example:
    >>> import random
    >>> from graphopt.operators.registry import get_operator
    >>> info = get_operator("rewrite").Params.model_fields["k"]
    >>> perturb_param(info, 1, random.Random(0), SEARCH_LIMITS["k"]) in {2, 3}
    True
"""

from __future__ import annotations

__all__ = ["SEARCH_LIMITS", "default_params_ok", "perturb_param", "perturbed_params", "clamp_params", "limit_of"]

import enum
import random
import types
from typing import Any, Literal, Union, get_args, get_origin

from ..operators.base import Operator

# The search's own range per param name ("op.param" for one operator), inside the operator's
# bounds: parameter mutations stay in it, and so do the params the meta model proposes.
SEARCH_LIMITS: dict[str, tuple[float, float]] = {
    "k": (1, 5),
    "n": (1, 5),
    "history.n": (1, 20),
    "temperature": (0.0, 1.2),
    "max_tokens": (16, 2048),
    "max_candidates": (1, 8),
    "parents": (1, 5),
    "max_demos": (1, 16),
    "max_failures": (1, 10),
    "max_successes": (0, 5),
    "limit": (1, 16),
    "min_chars": (1, 200),
    "max_history": (1, 20),
    # fewshot's greedy choice scores k x (1 + rounds x (tries + max_demos)) sets on the minibatch
    "fewshot.rounds": (1, 3),
    "fewshot.tries": (1, 8),
}


def limit_of(limits: dict[str, tuple[float, float]], op: str, field: str) -> tuple[float, float] | None:
    """The search's range for one operator's param: "op.field" first, then the field name."""
    return limits.get(f"{op}.{field}") or limits.get(field)


def clamp_params(cls: type[Operator], params: dict, limits: dict[str, tuple[float, float]] = SEARCH_LIMITS) -> dict:
    """`params` with every number moved into its range (field bounds narrowed by `limits`).

    Used on what the meta model proposes: a proposal may carry `max_tokens: 10**9` or `k: 500`;
    it gets the nearest value the search itself would try. Other values are left to validation.
    """
    fields = getattr(cls, "Params", None)
    fields = fields.model_fields if fields is not None else {}
    out = dict(params)
    for name, value in params.items():
        info = fields.get(name)
        if info is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        integer = isinstance(value, int)
        lo, hi = _bounds(info, integer, limit_of(limits, cls.name, name))
        if lo is not None and value < lo:
            value = lo
        if hi is not None and value > hi:
            value = hi
        out[name] = int(value) if integer else float(value)
    return out


def default_params_ok(cls: type[Operator]) -> bool:
    """Whether the operator's Params validate with every field left at its default."""
    try:
        cls.Params.model_validate({})
        return True
    except ValueError:
        return False


def _bounds(info: Any, integer: bool, limits: tuple[float, float] | None) -> tuple[float | None, float | None]:
    """(low, high), inclusive: the field's ge/gt/le/lt metadata narrowed by the search's `limits`."""
    step = 1 if integer else 0.01
    lo, hi = limits if limits else (None, None)
    for meta in info.metadata:
        for attr, low, shift in (("ge", True, 0), ("gt", True, step), ("le", False, 0), ("lt", False, -step)):
            bound = getattr(meta, attr, None)
            if bound is None:
                continue
            if low:
                lo = bound + shift if lo is None else max(lo, bound + shift)
            else:
                hi = bound + shift if hi is None else min(hi, bound + shift)
    return lo, hi


def perturb_param(info: Any, current: Any, rng: random.Random, limits: tuple[float, float] | None = None) -> Any:
    """A new value for a pydantic field: another choice, a flipped bool, or a nearby number in bounds.

    Returns None for fields it does not know how to change (strings, lists, ...) and for numbers
    left unset (None) without an upper bound, whose scale cannot be guessed.
    """
    ann = info.annotation
    if get_origin(ann) in (Union, types.UnionType):
        args = [a for a in get_args(ann) if a is not type(None)]
        ann = args[0] if len(args) == 1 else ann
    if get_origin(ann) is Literal:
        choices = [c for c in get_args(ann) if c != current]
        return rng.choice(choices) if choices else None
    if isinstance(ann, type) and issubclass(ann, enum.Enum):
        choices = [c for c in ann if c != current]
        return rng.choice(choices) if choices else None
    if ann is bool:
        return not current
    if ann in (int, float) and current is None and _bounds(info, ann is int, limits)[1] is None:
        return None
    if ann is int:
        lo, hi = _bounds(info, True, limits)
        cur = int(current) if isinstance(current, (int, float)) else int(lo if lo is not None else 1)
        lo = int(lo) if lo is not None else min(0, cur)
        hi = int(hi) if hi is not None else max(2 * cur, cur + 2, lo + 2)
        near = min(hi, max(lo, cur))  # a current value outside the limits moves back inside
        choices = [v for v in range(max(lo, near - 2), min(hi, near + 2) + 1) if v != cur]
        return rng.choice(choices) if choices else None
    if ann is float:
        lo, hi = _bounds(info, False, limits)
        cur = float(current) if isinstance(current, (int, float)) else (lo if lo is not None else 0.5)
        lo = lo if lo is not None else min(0.0, cur - 1.0)
        hi = hi if hi is not None else max(2 * abs(cur), cur + 1.0)
        return round(min(hi, max(lo, cur + rng.gauss(0.0, 0.25 * (hi - lo)))), 2)
    return None


def perturbed_params(
    cls: type[Operator], params: dict, rng: random.Random, limits: dict[str, tuple[float, float]]
) -> dict | None:
    """`params` with one field changed within its constraints, or None when none can change."""
    fields = cls.Params.model_fields
    names = list(fields)
    rng.shuffle(names)
    for fname in names:
        info = fields[fname]
        current = params.get(fname, info.get_default(call_default_factory=True))
        for _ in range(4):
            value = perturb_param(info, current, rng, limit_of(limits, cls.name, fname))
            if value is None:
                break
            candidate = {**params, fname: value}
            try:
                cls.Params.model_validate(candidate)
            except ValueError:
                continue
            if value != current:
                return candidate
    return None
