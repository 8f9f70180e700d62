"""The examples in graphopt's docstrings run and print what they say (a stale example fails here)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import graphopt

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(graphopt.__path__, "graphopt.")
    if not info.name.startswith("graphopt.testing.") and info.name != "graphopt.__main__"
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # an optional extra (Ray, PostgreSQL driver) that is not installed
        pytest.skip(f"{name} needs {exc.name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} docstring examples in {name} fail (run it with -s to see)"
