"""The tables of benchmarks/search_quality.py: per cap and task, then averaged over tasks.

Each row says what a method really spent (tokens per level, the total against the cap) beside
its test accuracy and its inference cost. For the search: whether its winner is a seed graph,
and its paired differences (by seed) against the best DSPy peer, against the best of DSPy's
BootstrapFewShot and BootstrapFewShotWithRandomSearch, and against its own best seed graph.
"""

from __future__ import annotations

import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from graphopt.program import Program

LEVELS = ("program", "optimizer", "meta")
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}
SEARCH = "search"
BOOTSTRAP_PEERS = ("dspy BootstrapFewShot", "dspy BootstrapFewShotWithRandomSearch")
# Ends the note of a peer that returned no program (DSPy raised, or the cap cut it before it
# returned): its row scores the zero-shot program a user would be left with, and says so.
ZERO_SHOT_KEPT = "zero-shot kept"


@dataclass
class Result:
    """One method on one task, seed and cap."""

    cap: str
    task: str
    method: str
    seed: int
    program: Program
    tokens: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""
    test: float = 0.0
    test_tokens: float = 0.0  # program tokens per test example: the program's inference cost
    winner_is_seed: bool | None = None  # the search only
    best_seed: tuple[str, Program] | None = None  # the search only: (graph name, program)
    best_seed_test: float | None = None
    failed: bool = False  # the method raised: its row keeps the seed program and says why in `note`

    @property
    def spent(self) -> int:
        return sum(self.tokens.values())

    @property
    def returned_nothing(self) -> bool:
        """The method returned no program: its row scores the zero-shot program in its place."""
        return ZERO_SHOT_KEPT in self.note

    @property
    def capped(self) -> int:
        """The tokens its cap limits: every level's under a total cap, the program level's under a program cap."""
        return self.tokens.get("program", 0) if self.cap == "program" else self.spent

    def row(self) -> dict[str, Any]:
        """The result as JSON-ready data (the program's demos and instruction included)."""
        return {
            "cap": self.cap, "task": self.task, "method": self.method, "seed": self.seed, "test": self.test,
            "tokens": self.tokens, "spent": self.spent, "test_tokens_per_example": self.test_tokens,
            "seconds": round(self.seconds, 1), "note": self.note, "failed": self.failed, "winner_is_seed": self.winner_is_seed,
            "best_seed": self.best_seed[0] if self.best_seed else None, "best_seed_test": self.best_seed_test,
            "program": self.program.model_dump(mode="json"),
            "best_seed_program": self.best_seed[1].model_dump(mode="json") if self.best_seed else None,
        }  # fmt: skip


def ci(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of the 95% t interval (nan for fewer than two values)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    return mean, T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / math.sqrt(len(values))


def fmt(values: list[float]) -> str:
    if not values:
        return "n/a"
    mean, half = ci(values)
    return f"{mean:.3f}" if math.isnan(half) else f"{mean:.3f} ± {half:.3f}"


def _by_seed(rows: list[Result], method: str) -> dict[int, Result]:
    return {r.seed: r for r in rows if r.method == method}


def _paired(a: dict[int, float], b: dict[int, float]) -> list[float]:
    return [a[s] - b[s] for s in sorted(a) if s in b]


def _table(rows: list[Result], cap_tokens: int) -> list[str]:
    lines = ["| method | test acc | spent (mean / max of cap) | program | optimizer | meta | p : o : m | test tok/example | notes (first seed) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for method in dict.fromkeys(r.method for r in rows):
        rs = [r for r in rows if r.method == method]
        toks = {lv: statistics.fmean(r.tokens.get(lv, 0) for r in rs) for lv in LEVELS}
        total = sum(toks.values())
        split = " : ".join(f"{100 * toks[lv] / total:.0f}%" for lv in LEVELS) if total else "-"
        most = max(r.capped for r in rs)
        lines.append(f"| {method} | {fmt([r.test for r in rs])}{_marks(rs)} | {total:,.0f} / {100 * most / cap_tokens:.0f}% | "
                     f"{toks['program']:,.0f} | {toks['optimizer']:,.0f} | {toks['meta']:,.0f} | {split} | "
                     f"{statistics.fmean(r.test_tokens for r in rs):,.0f} | {rs[0].note.split('; why: ')[0]} |")
    return lines


def _search_lines(per_task: dict[str, list[Result]]) -> list[str]:
    """The search's paired differences, for one task (one key) or averaged over tasks (several)."""
    def mean_over_tasks(method: str, value=lambda r: r.test) -> dict[int, float]:  # noqa: ANN001
        seeds = [set(_by_seed(rows, method)) for rows in per_task.values()]
        common = set.intersection(*seeds) if seeds else set()
        return {s: statistics.fmean(value(_by_seed(rows, method)[s]) for rows in per_task.values()) for s in common}

    search = mean_over_tasks(SEARCH)
    if not search:
        return []
    lines = []
    peers = [m for m in dict.fromkeys(r.method for rows in per_task.values() for r in rows) if m.startswith("dspy ")]
    if peers:
        best = max(peers, key=lambda m: statistics.fmean(mean_over_tasks(m).values() or [0.0]))
        lines.append(f"- search minus the best DSPy peer ({best}), paired by seed: {fmt(_paired(search, mean_over_tasks(best)))}")
        boot = [m for m in BOOTSTRAP_PEERS if m in peers]
        if boot:
            pair = {m: mean_over_tasks(m) for m in boot}
            top = {s: max(pair[m][s] for m in boot) for s in search if all(s in pair[m] for m in boot)}
            diff = _paired(search, top)
            lines.append(f"- search minus the better of DSPy BootstrapFewShot / WithRandomSearch (per seed): {fmt(diff)}"
                         f" = {100 * statistics.fmean(diff) if diff else float('nan'):+.1f} points (issue 17 asks +6)")
    seeds = mean_over_tasks(SEARCH, lambda r: r.best_seed_test if r.best_seed_test is not None else float("nan"))
    diff = [d for d in _paired(search, seeds) if not math.isnan(d)]
    rows = [r for rows in per_task.values() for r in rows if r.method == SEARCH]
    strict = sum(1 for r in rows if r.best_seed_test is not None and r.test > r.best_seed_test + 1e-9)
    is_seed = sum(1 for r in rows if r.winner_is_seed)
    lines.append(f"- search minus its own best seed graph (best on validation), paired: {fmt(diff)}; "
                 f"strictly above it in {strict} of {len(rows)} runs; the winner is a seed graph in {is_seed} of {len(rows)}")
    return lines


def markdown(results: list[Result], args: Any, seconds: float, exact: tuple[int, int] | None, *,
             missing: int | None = None) -> str:
    """The report: a header (command, load, models, exactness), then tables per cap. `missing`: the
    tables are built from the journal (`--table-only`) and that many selected method runs are not in
    it yet (then say which seeds each task has)."""
    journal = missing is not None
    when = (f"Tables of the journaled runs on {time.strftime('%Y-%m-%d %H:%M')} (the runs took {seconds / 60:.1f} minutes"
            if journal else f"Run on {time.strftime('%Y-%m-%d %H:%M')}, {seconds / 60:.1f} minutes")
    lines = [
        "# Search quality against DSPy's optimizers, at equal spend",
        "",
        f"{when}, load average {os.getloadavg()[0]:.1f} "
        f"({os.cpu_count()} cores){')' if journal else ''}, with `python benchmarks/search_quality.py {' '.join(sys.argv[1:])}`.",
        f"Cap **{args.tokens:,} tokens** per method; train {args.train}, validation {args.val_limit}, test {args.test_limit} "
        f"examples; {args.k} labeled demos; seeds {_span(args.seeds)} (data split and method seed); search preset {args.preset}. "
        "Models: every level on the embedded model (SmolLM2-135M-Instruct) unless set. Test accuracy: mean ± 95% CI over seeds. "
        "Spent: tokens of calls that reached the model (cache hits excluded), mean over seeds, and the largest as a share of the cap.",
    ]
    if missing:
        seeds = {(r.cap, r.task): sorted({x.seed for x in results if (x.cap, x.task) == (r.cap, r.task)}) for r in results}
        lines.append(f"**Partial**: {missing} of {missing + len(results)} method runs not journaled yet; seeds so far: "
                     + "; ".join(f"{cap} {task} {', '.join(map(str, s))}" for (cap, task), s in seeds.items())
                     + ". A seed missing some method is counted only where that method ran.")
    elif journal:
        lines.append(f"Complete: all {len(results)} method runs these arguments select are in the journal.")
    if exact is not None:
        lines.append(f"The DSPy peers ran on `python -m llama_cpp.server`; checked before the run: its answers equal the "
                     f"in-process model's on {exact[0]} of {exact[1]} prompts (greedy, repeat_penalty 1.0).")
    for cap in dict.fromkeys(r.cap for r in results):
        mine = [r for r in results if r.cap == cap]
        title = "total tokens (all levels)" if cap == "total" else "program tokens (optimizer and meta calls free)"
        lines += ["", f"## Equal {title}: cap {args.tokens:,}"]
        per_task = {t: [r for r in mine if r.task == t] for t in dict.fromkeys(r.task for r in mine)}
        for task, rows in per_task.items():
            lines += ["", f"### {task}", "", *_table(rows, args.tokens), "", *_search_lines({task: rows})]
        if len(per_task) > 1:
            lines += ["", f"### Average over {len(per_task)} tasks", "", *_average(per_task, args.tokens), "", *_search_lines(per_task)]
    return "\n".join(lines) + "\n"


def _average(per_task: dict[str, list[Result]], cap_tokens: int) -> list[str]:
    lines = ["| method | test acc (task mean) | spent (mean) | program | optimizer | meta | test tok/example |", "|---|---|---|---|---|---|---|"]
    methods = dict.fromkeys(r.method for rows in per_task.values() for r in rows)
    for method in methods:
        by_task = [_by_seed(rows, method) for rows in per_task.values()]
        seeds = set.intersection(*(set(b) for b in by_task))
        if not seeds:  # a partial run: the method has no seed on every task yet
            lines.append(f"| {method} | no seed on every task yet | - | - | - | - | - |")
            continue
        accs = [statistics.fmean(b[s].test for b in by_task) for s in sorted(seeds)]
        every = [b[s] for b in by_task for s in seeds]
        toks = {lv: statistics.fmean(r.tokens.get(lv, 0) for r in every) for lv in LEVELS}
        lines.append(f"| {method} | {fmt(accs)}{_marks(every)} | {sum(toks.values()):,.0f} | {toks['program']:,.0f} | {toks['optimizer']:,.0f} | "
                     f"{toks['meta']:,.0f} | {statistics.fmean(r.test_tokens for r in every):,.0f} |")
    return lines


def _span(seeds: list[int]) -> str:
    """Seeds as the header says them: 0-4 for a range from 0, else listed."""
    return f"0-{seeds[-1]}" if seeds == list(range(len(seeds))) else ", ".join(map(str, seeds))


def _marks(rows: list[Result]) -> str:
    """After a method's accuracy: how many of its runs failed, or returned no program."""
    failed, nothing = sum(r.failed for r in rows), sum(r.returned_nothing for r in rows)
    return (f" ({failed} FAILED)" if failed else "") + (
        f" ({nothing} of {len(rows)} returned no program: zero-shot scored)" if nothing else "")
