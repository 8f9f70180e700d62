"""The `--max-error-rate` option and one-line error text (the checks themselves: `graphopt.app.checks`)."""

from __future__ import annotations

__all__ = ["MaxErrorRate", "DEFAULT_MAX_ERROR_RATE", "clean_line"]

from typing import Annotated

import typer

from ..app.checks import DEFAULT_MAX_ERROR_RATE

MaxErrorRate = Annotated[
    float,
    typer.Option(
        "--max-error-rate",
        min=0.0,
        max=1.0,
        help="Stop with exit code 2 when more than this share of examples have no answer because "
        "their model call failed after its retries (default 0.05).",
    ),
]


def clean_line(text: str) -> str:
    """`text` as one printable line: line breaks, tabs and other control characters escaped."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable():
            out.append(char)
        elif char in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char])
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)
