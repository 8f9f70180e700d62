"""The status of an evaluation (a candidate graph's, a unit of work's, a study cell's).

A `str` enum: a member equals its value ("done" == Status.done), so rows stored before the enum
existed read the same, and the store keeps the plain string. Members are named by their values,
so whatever way a database driver turns an enum into text (name or value) writes the same string.

- ``pending``: registered, not started (or left running by a killed process, then resumed).
- ``running``: started and not yet recorded.
- ``done``: finished; its validation score is a measurement.
- ``partial``: a budget cap stopped it; its scores are kept but a resume evaluates it again.
- ``failed``: it could not run, or model calls failed at the provider; the reason says which.
- ``screened``: it lost its race: scored on the screen's few validation examples only.
- ``screen``: inside a race, a screen that may still go on (held in memory, never stored).

Example:
    >>> Status("done") is Status.done and Status.done == "done"
    True
    >>> f"{Status.partial}"
    'partial'
"""

from __future__ import annotations

__all__ = ["Status"]

from enum import Enum


class Status(str, Enum):
    """See the module docstring."""

    pending = "pending"
    running = "running"
    done = "done"
    partial = "partial"
    failed = "failed"
    screened = "screened"
    screen = "screen"

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)
