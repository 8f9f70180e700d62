"""Peers of graphopt's search in benchmarks/search_quality.py: DSPy's optimizers on the embedded model.

Needs the `bench` extra; `missing_extra()` names what is missing and the install command.
"""

from __future__ import annotations

import importlib.util

INSTALL = "pip install -e '.[bench]'"
NEEDED = {"dspy": "dspy", "optuna": "optuna (MIPROv2)", "uvicorn": "llama-cpp-python[server]",
          "sse_starlette": "llama-cpp-python[server]", "starlette_context": "llama-cpp-python[server]",
          "pydantic_settings": "llama-cpp-python[server]"}


def missing_extra() -> str | None:
    """A one-line message naming what the peers lack and how to install it, or None."""
    missing = sorted({what for module, what in NEEDED.items() if importlib.util.find_spec(module) is None})
    if not missing:
        return None
    return f"the DSPy peers need the bench extra (missing: {', '.join(missing)}): run {INSTALL}, or leave the dspy methods out with --methods"
