"""How a use case tells its caller what is happening: `on_event(kind, data)`; it never prints."""

from __future__ import annotations

__all__ = ["OnEvent", "ignore"]

from collections.abc import Callable
from typing import Any

OnEvent = Callable[[str, Any], None]


def ignore(kind: str, data: Any) -> None:
    """The default `on_event`: tells no one."""
