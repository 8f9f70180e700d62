"""`graphopt search --dry-run`: what the search would spend, under its caps, checked like a real run.

The estimate is an upper bound before caching (`search.budgets.estimate`); each level's row is cut
by the caps that apply to it (the level's own, then the run's total, shared in proportion), with
dollars at the level's price where one is known, and minutes only when every level runs on the
embedded model (elsewhere time is the provider's).
"""

from __future__ import annotations

__all__ = ["dry_run_table"]

from rich.table import Table

from ..lm import LM, levels_shown
from ..search.budgets import SearchBudget, embedded_minutes


def _capped(figures: dict[str, dict[str, int]], plan: SearchBudget, levels: list[str]) -> dict[str, dict[str, float]]:
    """Per level: calls and tokens after the caps (level caps first, then the total cap shared in proportion)."""
    out: dict[str, dict[str, float]] = {}
    for level in levels:
        row = dict(figures.get(level, {"calls": 0, "tokens": 0}))
        caps = plan.levels.get(level)
        for kind in ("calls", "tokens"):
            cap = getattr(caps, kind, None) if caps is not None else None
            if cap is not None:
                row[kind] = min(row[kind], cap)
        out[level] = row
    for kind in ("calls", "tokens"):
        total_cap = getattr(plan, kind)
        total = sum(r[kind] for r in out.values())
        if total_cap is not None and total > total_cap:
            for row in out.values():
                row[kind] = row[kind] * total_cap / total
    return out


def dry_run_table(plan: SearchBudget, figures: dict[str, dict[str, int]], lm: LM, metric_levels: tuple[str, ...]) -> tuple[Table, str]:
    """The dry run's table (estimate, after caps, dollars) and the line under it."""
    levels = list(levels_shown(metric_levels))
    capped = _capped(figures, plan, levels)
    table = Table(title=f"Dry run ({plan.name}): at most {figures['graphs']['calls']} graphs", title_justify="left")
    for column in ("level", "model", "calls", "tokens", "after caps", "dollars"):
        table.add_column(column, justify="left" if column in ("level", "model") else "right")
    dollars_total, unpriced = 0.0, []
    for level in levels:
        row, cut = figures.get(level, {"calls": 0, "tokens": 0}), capped[level]
        model = lm.model(level)
        dollars = _dollars(lm, level, cut["tokens"])
        if dollars is None:
            unpriced.append(level)
        else:
            dollars_total += dollars
        table.add_row(
            level, model, f"{row['calls']:,}", f"{row['tokens']:,}",
            f"{cut['tokens']:,.0f}" if cut["tokens"] != row["tokens"] else "",
            "free" if model.startswith("local/") else ("no price" if dollars is None else f"${dollars:,.2f}"),
        )
    if plan.dollars is not None:
        dollars_total = min(dollars_total, plan.dollars)
    local = all(lm.model(level).startswith("local/") for level in levels)
    minutes = embedded_minutes({lvl: {"tokens": int(c["tokens"])} for lvl, c in capped.items()})
    if not local:
        when = "time depends on the providers"
    elif minutes >= 1:
        when = f"on the embedded model with 2 cores, at most about {minutes:.0f} minutes (runs take about two thirds of it)"
    else:
        when = "on the embedded model with 2 cores, under a minute"
    price = "" if local else f"; at most ${dollars_total:,.2f}" + (f" plus the unpriced levels ({', '.join(unpriced)})" if unpriced else "")
    return table, f"Upper estimate before caching ({when}){price}; nothing was spent."


def _dollars(lm: LM, level: str, tokens: float) -> float | None:
    """Dollars for `tokens` at the level's price (a fifth of them counted as completion), None when unknown."""
    if lm.model(level).startswith("local/"):
        return 0.0
    return lm.dollars(level, int(tokens * 0.8), int(tokens * 0.2))
