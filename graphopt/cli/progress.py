"""A progress display for long work: done/total, spend per level and an ETA.

On a terminal it rewrites one status line in place; anywhere else (a pipe, a log file, CI) it
prints one plain line per update, so logs stay readable.
"""

from __future__ import annotations

__all__ = ["Progress", "eta_text", "search_progress"]

import sys
import time
from typing import TextIO

from ..lm import LEVELS, levels_shown


def _k(n: float) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else f"{n:.0f}"


def eta_text(done: int, total: int, elapsed: float) -> str:
    """"ETA 1m05s" from the rate so far ("ETA ?" before the first unit finished)."""
    if done <= 0 or total <= done:
        return "ETA ?" if total > done else "ETA 0s"
    left = elapsed / done * (total - done)
    minutes, seconds = divmod(int(round(left)), 60)
    return f"ETA {minutes}m{seconds:02d}s" if minutes else f"ETA {seconds}s"


class Progress:
    """Counts finished units and their spend.

    Args:
        total: units in all.
        done: units finished before (a resumed study); they do not count toward the rate.
        what: the units' name ("cells", "evaluations").
        stream: where to write (default stderr); `tty` overrides its isatty().
    """

    def __init__(self, total: int, *, done: int = 0, what: str = "cells", stream: TextIO | None = None, tty: bool | None = None):
        self.total, self.done, self.what = total, done, what
        self._before = done
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.tokens = {level: 0.0 for level in LEVELS}
        self.dollars = 0.0
        self.started = time.monotonic()

    def add(self, usage: dict | None = None, note: str = "") -> None:
        """One more unit finished, with its usage (a `Ledger.to_dict()`)."""
        self.done += 1
        for level, data in ((usage or {}).get("levels") or {}).items():
            self.tokens[level] = self.tokens.get(level, 0) + data.get("tokens", 0)
            self.dollars += data.get("cost", 0.0)
        self.show(note)

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        shown = levels_shown(level for level, tokens in self.tokens.items() if tokens)
        spend = " ".join(f"{level} {_k(self.tokens.get(level, 0))}" for level in shown)
        eta = eta_text(self.done - self._before, self.total - self._before, elapsed)
        return f"{self.done}/{self.total} {self.what} | tokens {spend} | ${self.dollars:.4f} | {elapsed:.0f}s, {eta}"

    def show(self, note: str = "") -> None:
        text = self.line() + (f" | {note}" if note else "")
        if self.tty:
            self.stream.write("\r\x1b[2K" + text[:200])
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def search_progress(total: int, handler, *, stream: TextIO | None = None, tty: bool | None = None):
    """An `on_event` for a search: `handler`'s lines, then the progress line after each evaluation.

    Args:
        total: evaluations at most (the budget's estimate: a search that stops early finishes below it).
        handler: the search's own event printer.
    """
    progress = Progress(total, what="evaluations", stream=stream, tty=tty)

    def on_event(kind: str, data: dict) -> None:
        if progress.tty:  # clear the status line before the handler prints above it
            progress.stream.write("\r\x1b[2K")
            progress.stream.flush()
        handler(kind, data)
        if kind == "candidate":
            progress.done += 1
            if data.get("reused"):
                progress._before += 1  # a result from the store says nothing about the rate
            for level, usage in (data.get("usage") or {}).items():
                progress.tokens[level] = usage.get("tokens", 0)
            progress.dollars = sum(u.get("cost", 0.0) for u in (data.get("usage") or {}).values())
            progress.show()

    on_event.progress = progress  # type: ignore[attr-defined]
    return on_event
