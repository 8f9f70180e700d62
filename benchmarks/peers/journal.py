"""The search-quality run's journal: one JSON line per finished (cap, task, seed, method), so a run
of many hours continues where it stopped.

A line holds the settings it was run with (every argument that changes a result); a later run
with the same settings takes the lines it finds instead of running those cells again, and a line
of other settings is ignored (never mixed into a table). A failed method run is not journaled:
the next run tries it again.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from graphopt.program import Program

from .report import Result

# What selects cells (not settings): the run may add tasks, seeds, methods or caps later.
SELECTORS = ("tasks", "seeds", "methods", "caps", "out", "journal", "table_only")


# Arguments added after runs were journaled count only when set, so those runs still match.
LATER = {"search_seeds": None, "screen": None, "proposer_tokens": None}


def settings(args: Any) -> dict[str, Any]:
    """The arguments that change a result, as JSON data."""
    return {
        k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items())
        if k not in SELECTORS and not (k in LATER and v == LATER[k])
    }


def key(result: Result) -> tuple[str, str, int, str]:
    return result.cap, result.task, result.seed, result.method


class Journal:
    """Appends finished results to `path` and reads back those of the same settings."""

    def __init__(self, path: Path, wanted: dict[str, Any]):
        self.path, self.settings = path, wanted

    def load(self) -> dict[tuple[str, str, int, str], Result]:
        """The journaled results of these settings (a line that does not parse is skipped)."""
        if not self.path.is_file():
            return {}
        found = {}
        for line in self.path.read_text().splitlines():
            try:
                data = json.loads(line)
                if data.get("settings") != self.settings:
                    continue
                result = from_row(data["row"])
            except (ValueError, KeyError, TypeError):
                continue
            found[key(result)] = result
        return found

    def add(self, result: Result) -> None:
        if result.failed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = (json.dumps({"settings": self.settings, "row": result.row()}) + "\n").encode()
        # One write in append mode: processes sharing a journal (other seeds each) never interleave lines.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, line)
        finally:
            os.close(fd)
        if written != len(line):  # a disk full: the line is cut, and the run must not go on as if journaled
            raise OSError(f"{self.path}: wrote {written} of {len(line)} bytes of a journal line; free space and run again")


def same_run(done: dict[tuple[str, str, int, str], Result], cell: tuple[str, str, int, str]) -> Result | None:
    """The program-cap `cell` answered by the journaled total-cap run of the same task, seed and
    method when that run spent program tokens only: a method that calls no other level runs under
    a total cap of N exactly as under a program cap of N, so its run is not repeated (its row says
    so). None for any other cell (a total-cap cell, or a method that spent optimizer or meta tokens)."""
    cap, task, seed, method = cell
    total = done.get(("total", task, seed, method))
    if cap != "program" or total is None or total.failed or any(total.tokens.get(level) for level in ("optimizer", "meta")):
        return None
    note = "; ".join(x for x in ("the total-cap run (program tokens only: the same limits)", total.note) if x)
    return replace(total, cap="program", note=note)


def from_row(row: dict[str, Any]) -> Result:
    """The Result a `Result.row()` was made from."""
    best_seed = None
    if row.get("best_seed") and row.get("best_seed_program"):
        best_seed = (row["best_seed"], Program.model_validate(row["best_seed_program"]))
    return Result(
        row["cap"], row["task"], row["method"], int(row["seed"]), Program.model_validate(row["program"]),
        tokens=dict(row.get("tokens") or {}), seconds=float(row.get("seconds") or 0.0), note=row.get("note", ""),
        test=float(row["test"]), test_tokens=float(row.get("test_tokens_per_example") or 0.0),
        winner_is_seed=row.get("winner_is_seed"), best_seed=best_seed, best_seed_test=row.get("best_seed_test"),
        failed=bool(row.get("failed")),
    )
