"""Reading structured data out of a model's reply.

Example:
    >>> first_json_object('Sure! {"instruction": "Sort them."} Hope it helps.')
    {'instruction': 'Sort them.'}
    >>> first_json_object("no json here") is None
    True
"""

from __future__ import annotations

__all__ = ["first_json_object"]

import json
from typing import Any

_DECODER = json.JSONDecoder()


def first_json_object(text: str) -> Any:
    """The first JSON object (`{...}`) that parses in `text`, or None.

    Models wrap JSON in prose or code fences, and a schema-constrained reply may still be cut
    off; every "{" is tried in turn, so text before the object and after it is ignored.
    """
    start = text.find("{")
    while start != -1:
        try:
            return _DECODER.raw_decode(text, start)[0]
        except ValueError:
            start = text.find("{", start + 1)
    return None
