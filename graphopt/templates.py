"""Prompt templates: their `{placeholders}`, the repairs a meta model's edit may need, and the
check of a node's prompt override (it must fill the way its operator will fill it).

An override may use any subset of the placeholders its operator fills (`{program}`,
`{n}`, ...), with format specs, but the check must hold for the values the run passes, and
must be fast and bounded whatever the text:

- the text is at most `max_prompt_chars()` characters (20,000 unless the environment variable
  `GRAPHOPT_MAX_PROMPT_CHARS` says otherwise) with at most `MAX_PLACEHOLDERS` placeholders, so
  no override can make a call's prompt huge;
- a placeholder names a value (no positional `{}`, no `{a.b}` or `{a[0]}` access), and its
  format spec holds no placeholder of its own and no number above `MAX_FORMAT_NUMBER` (a width
  or precision of 1,500,000,000 would build a 1.5 GB string);
- the text fills with values of the types the operator passes (`Prompt.types`: `{n:s}` fails
  on the integer `n`), as it will at run time.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_PROMPT_CHARS",
    "MAX_PLACEHOLDERS",
    "MAX_FORMAT_NUMBER",
    "max_prompt_chars",
    "template_problems",
    "sample_values",
    "prompt_placeholders",
    "escape_stray_braces",
    "restore_placeholders",
]

import os
import re
import string
from typing import TYPE_CHECKING, Any

from .errors import did_you_mean

if TYPE_CHECKING:
    from .operators.base import Prompt

DEFAULT_MAX_PROMPT_CHARS = 20_000
"""Longest prompt override accepted; raise it with the environment variable GRAPHOPT_MAX_PROMPT_CHARS."""
MAX_PLACEHOLDERS = 64
"""Most placeholders (counting repeats) one prompt override may hold."""
MAX_FORMAT_NUMBER = 1_000
"""Largest number (width or precision) a placeholder's format spec may hold."""

_ENV = "GRAPHOPT_MAX_PROMPT_CHARS"
_NUMBER = re.compile(r"\d+")
# A sample of each type an operator may pass, for the trial fill: multi-line text, a count.
_SAMPLES: dict[type, Any] = {str: "sample text\nsecond line", int: 3, float: 0.5}


def max_prompt_chars() -> int:
    """The prompt size limit: `GRAPHOPT_MAX_PROMPT_CHARS` when set to a positive integer, else 20,000."""
    raw = os.environ.get(_ENV, "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    return DEFAULT_MAX_PROMPT_CHARS


def sample_values(prompt: Prompt) -> dict[str, Any]:
    """A value of the declared type for each placeholder of `prompt` (text when undeclared)."""
    return {name: _SAMPLES.get(prompt.types.get(name, str), "x") for name in prompt.placeholders()}


def template_problems(where: str, text: str, default: Prompt, op_name: str) -> list[str]:
    """Every problem of the override `text` of the prompt whose default is `default`.

    Args:
        where: how messages name the prompt, e.g. "node rw: prompt 'rewrite'".
        text: the override.
        default: the operator's prompt, which declares the placeholders and their types.
        op_name: the operator's name, for messages.

    Returns:
        One sentence per problem, each starting with `where`; empty when the override is usable.
    """
    limit = max_prompt_chars()
    if len(text) > limit:
        return [f"{where} has {len(text):,} characters, more than the limit of {limit:,} "
                f"(shorten it, or set {_ENV} to raise the limit)"]
    try:
        fields = _fields(text)
    except ValueError as exc:
        return [f"{where} is not a valid template: {exc} (write {{{{ and }}}} for literal braces)"]
    if len(fields) > MAX_PLACEHOLDERS:
        return [f"{where} has {len(fields)} placeholders; at most {MAX_PLACEHOLDERS} are allowed"]
    provided = default.placeholders()
    out: list[str] = []
    for field in sorted({name for name, _, _ in fields}):
        base = _base_name(field)
        if field == "" or field.isdigit():
            out.append(f"{where}: positional placeholder {{{field}}} is not allowed; use a name")
        elif base not in provided:
            offer = ", ".join("{" + p + "}" for p in sorted(provided)) or "none"
            out.append(
                f"{where}: placeholder {{{field}}} is not provided by operator {op_name}"
                f"{did_you_mean(base, provided)} (it provides {offer})"
            )
        elif field != base:
            out.append(f"{where}: placeholder {{{field}}} reads an attribute or item; write {{{base}}}")
    if out:
        return out
    for name, spec, nested in fields:
        if nested:
            out.append(f"{where}: the format spec of {{{name}}} holds a placeholder; write the spec out")
        elif any(len(n) > 6 or int(n) > MAX_FORMAT_NUMBER for n in _NUMBER.findall(spec)):
            out.append(
                f"{where}: the format spec {{{name}:{_short(spec)}}} has a width or precision above "
                f"{MAX_FORMAT_NUMBER}"
            )
    if out:
        return sorted(set(out))
    try:
        text.format(**sample_values(default))
    except Exception as exc:  # noqa: BLE001  (format raises ValueError, TypeError, KeyError...)
        return [f"{where} cannot be filled with the values operator {op_name} passes: {type(exc).__name__}: {exc}"]
    return []


def _fields(text: str) -> list[tuple[str, str, bool]]:
    """(name, format spec, whether the spec holds placeholders) of each placeholder, nested ones too."""
    out = []
    for _, name, spec, _ in string.Formatter().parse(text):
        if name is not None:
            inner = _fields(spec) if spec else []
            out.append((name, spec or "", bool(inner)))
            out.extend(inner)
    return out


def _base_name(field: str) -> str:
    return field.split(".", 1)[0].split("[", 1)[0]


def _short(spec: str) -> str:
    return spec if len(spec) <= 20 else spec[:17] + "..."

def prompt_placeholders(text: str) -> set[str]:
    """The `{name}` fields of a template (raises ValueError on a malformed template)."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def escape_stray_braces(text: str, allowed: set[str]) -> str:
    """Doubles every brace that is not part of an allowed `{placeholder}`.

    A proposed prompt often shows JSON (`{"instruction": ...}`) with single braces; escaping
    them keeps it a valid template instead of rejecting it.
    """
    out: list[str] = []
    i = 0
    while i < len(text):
        match = re.match(r"\{\{|\}\}", text[i:])
        if match:  # already escaped
            out.append(match.group())
            i += 2
            continue
        match = re.match(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", text[i:])
        if match and match.group(1) in allowed:
            out.append(match.group())
            i += len(match.group())
            continue
        ch = text[i]
        out.append(ch * 2 if ch in "{}" else ch)
        i += 1
    return "".join(out)


def restore_placeholders(text: str, current: str, needed: set[str]) -> tuple[str, set[str]]:
    """Appends, from the current prompt, each line holding a placeholder the edit dropped.

    The operator fills those placeholders with what the node works on (the program, its
    failures, ...); an edit that loses one would blind the node, so the line comes back instead
    of the whole edit being thrown away (small meta models often drop them).

    Returns:
        The repaired text and the placeholders that were re-added.
    """
    missing = needed - prompt_placeholders(text)
    if not missing:
        return text, set()
    lines = [
        line for line in current.splitlines()
        if prompt_placeholders(line) & missing
    ]
    return text.rstrip() + "\n\n" + "\n".join(lines), missing
