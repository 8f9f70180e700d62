"""The usage ledger: calls, tokens, dollars, cache hits and latency per level and per model.

Besides the client's own ledger, any number of *usage scopes* can be open: `usage_scope()`
gives a fresh ledger that receives every call made inside the block, including calls made by
the asyncio tasks it starts (a context variable carries the open scopes into them). That is how
concurrent evaluations each know their own cost, without diffing a shared ledger.

Example:
    >>> import asyncio
    >>> from graphopt.lm import LM
    >>> from graphopt.testing import FakeModel
    >>> lm = LM(transport=FakeModel(default="ok"), cache_dir=None)
    >>> async def one(prompt):
    ...     with usage_scope() as mine:
    ...         await lm.complete("program", [{"role": "user", "content": prompt}])
    ...     return mine.total().calls
    >>> async def both():
    ...     return await asyncio.gather(one("a"), one("b"))
    >>> asyncio.run(both()), lm.ledger.total().calls
    ([1, 1], 2)
"""

from __future__ import annotations

__all__ = ["Usage", "Ledger", "usage_scope", "record_in_scopes"]

import contextlib
import contextvars
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field


@dataclass
class Usage:
    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency: float = 0.0
    errors: int = 0  # failed attempts, retried ones included
    failures: int = 0  # calls that failed for good (not retryable, or past the retries)
    # Tokens of answers served from the cache or joined in flight: work done, not spent.
    cached_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: Usage) -> None:
        # Runs once per model call: plain attribute access, not dataclasses.asdict (a deep copy).
        for name in _FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def to_dict(self) -> dict:
        return {**asdict(self), "tokens": self.tokens}


_FIELDS = tuple(Usage.__dataclass_fields__)


@dataclass
class Ledger:
    """Usage keyed by (level, model). Thread-safe; cheap to snapshot."""

    rows: dict[tuple[str, str], Usage] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, level: str, model: str, usage: Usage) -> None:
        with self._lock:
            self.rows.setdefault((level, model), Usage()).add(usage)

    def level(self, level: str) -> Usage:
        """The total of one level over all its models."""
        total = Usage()
        with self._lock:
            for (lvl, _), usage in self.rows.items():
                if lvl == level:
                    total.add(usage)
        return total

    def total(self) -> Usage:
        total = Usage()
        with self._lock:
            for usage in self.rows.values():
                total.add(usage)
        return total

    def snapshot(self) -> Ledger:
        with self._lock:
            return Ledger({k: Usage(**asdict(v)) for k, v in self.rows.items()})

    def since(self, earlier: Ledger) -> Ledger:
        """The usage recorded after `earlier` (a snapshot of this ledger)."""
        out = Ledger()
        with self._lock:
            for key, usage in self.rows.items():
                diff = Usage(**asdict(usage))
                before = earlier.rows.get(key)
                if before is not None:
                    for name, value in asdict(before).items():
                        setattr(diff, name, getattr(diff, name) - value)
                if diff.calls or diff.cache_hits or diff.errors or diff.failures:
                    out.rows[key] = diff
        return out

    def to_dict(self) -> dict:
        """{"levels": {level: usage}, "models": [{level, model, ...usage}], "total": usage}."""
        with self._lock:
            keys = sorted(self.rows)
            models = [{"level": lvl, "model": m, **self.rows[(lvl, m)].to_dict()} for lvl, m in keys]
        levels = {lvl: self.level(lvl).to_dict() for lvl in dict.fromkeys(k[0] for k in keys)}
        return {"levels": levels, "models": models, "total": self.total().to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> Ledger:
        ledger = cls()
        for row in data.get("models", []):
            fields = {k: row[k] for k in Usage.__dataclass_fields__ if k in row}
            ledger.rows[(row["level"], row["model"])] = Usage(**fields)
        return ledger


_SCOPES: contextvars.ContextVar[tuple[Ledger, ...]] = contextvars.ContextVar("graphopt_usage_scopes", default=())


@contextlib.contextmanager
def usage_scope() -> Iterator[Ledger]:
    """A ledger that records every model call made in this context (and the tasks it starts)."""
    ledger = Ledger()
    token = _SCOPES.set((*_SCOPES.get(), ledger))
    try:
        yield ledger
    finally:
        _SCOPES.reset(token)


def record_in_scopes(level: str, model: str, usage: Usage) -> None:
    """Adds one call's usage to every open usage scope of the current context."""
    for ledger in _SCOPES.get():
        ledger.record(level, model, usage)
