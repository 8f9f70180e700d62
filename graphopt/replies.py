"""Reading structured data out of a model's reply.

Example:
    >>> first_json_object('Sure! {"instruction": "Sort them."} Hope it helps.')
    {'instruction': 'Sort them.'}
    >>> first_json_object("no json here") is None
    True
"""

from __future__ import annotations

__all__ = ["first_json_object", "json_objects"]

import json
from collections.abc import Iterator
from typing import Any

_DECODER = json.JSONDecoder()


def json_objects(text: str) -> Iterator[Any]:
    """Every JSON value that parses at a "{" of `text`, in order (objects nested in one are skipped).

    Models wrap JSON in prose or code fences, and a schema-constrained reply may still be cut
    off; every "{" is tried in turn, so text before, between and after the objects is ignored.
    """
    start = text.find("{")
    while start != -1:
        try:
            value, end = _DECODER.raw_decode(text, start)
        except ValueError:
            start = text.find("{", start + 1)
            continue
        yield value
        start = text.find("{", end)


def first_json_object(text: str) -> Any:
    """The first JSON object (`{...}`) that parses in `text`, or None."""
    return next(json_objects(text), None)
