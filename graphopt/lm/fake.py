"""Kept for imports written before graphopt.testing: the fake model lives there now."""

from ..testing.fake import FakeModel

__all__ = ["FakeModel"]
