"""What the run store writes: caller values as plain JSON without secrets, usage as numbers, UTC times.

Example:
    >>> strip_secrets({"model": "local", "api_key": "sk-1", "max_tokens": 64})
    {'model': 'local', 'max_tokens': 64}
    >>> usage_values({"prompt_tokens": 3, "completion_tokens": 4})["tokens"]
    7
"""

from __future__ import annotations

__all__ = ["strip_secrets", "jsonable", "usage_values", "spend_values", "USAGE_FIELDS", "now", "aware"]

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

# The one secret scrubber of graphopt (the LM layer's): dropped names are the same everywhere.
from ..lm.secrets import strip_secrets

USAGE_FIELDS = ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "tokens", "cost", "latency", "errors")


def jsonable(value: Any) -> Any:
    """Turns pydantic models, ledgers and tuples into plain JSON data."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def usage_values(usage: Any) -> dict[str, Any]:
    """The `USAGE_FIELDS` of a `Usage` (or its dict), missing ones 0; tokens default to prompt + completion."""
    data = jsonable(usage) or {}
    values = {name: data.get(name, 0) or 0 for name in USAGE_FIELDS}
    if "tokens" not in data:
        values["tokens"] = values["prompt_tokens"] + values["completion_tokens"]
    return values


def spend_values(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """An evaluation's token and dollar columns, read from a ledger's `to_dict()`."""
    levels = (usage or {}).get("levels", {})
    return {
        **{f"{level}_tokens": int(levels.get(level, {}).get("tokens", 0)) for level in ("program", "optimizer", "meta")},
        "dollars": float((usage or {}).get("total", {}).get("cost", 0.0)),
    }


def now() -> datetime:
    """The current UTC time without tzinfo, as the DateTime columns store it."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def aware(value: datetime | None) -> datetime | None:
    """A stored (naive, UTC) time made timezone-aware; None stays None."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)
