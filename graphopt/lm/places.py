"""Where a model call is made: samples at temperature > 0 are numbered per place, not per client.

At temperature > 0 the n-th identical request is the n-th *sample* (its own cache entry, and a
varied seed for providers that honour seeds). Numbered by call order in the whole client, the
samples of one evaluation would depend on which other evaluations ran beside it, and a resumed
run (a new client) would number them again from 0. So every call is made at a *place*: a path
such as ``("cand-3", "step1", "rewrite")`` set by the search, the inner loop and the graph as the
work descends, held in a context variable (each asyncio task keeps its own). Samples are numbered
within their place, so concurrency and resume do not change them.

Example:
    >>> with sample_place("cand-3"), sample_place("step1"):
    ...     current_place()
    'cand-3/step1'
"""

from __future__ import annotations

__all__ = ["sample_place", "current_place"]

import contextlib
import contextvars
from collections.abc import Iterator

_PLACE: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("graphopt_sample_place", default=())


@contextlib.contextmanager
def sample_place(*parts: object) -> Iterator[None]:
    """Makes the calls inside the block at this place (appended to the current one)."""
    token = _PLACE.set(_PLACE.get() + tuple(str(p) for p in parts))
    try:
        yield
    finally:
        _PLACE.reset(token)


def current_place() -> str:
    """The place of a call made now ("" outside any place)."""
    return "/".join(_PLACE.get())
