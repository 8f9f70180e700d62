"""The study's results: mean ± 95% CI over seeds per (task, method), paired differences against a
baseline, tokens and dollars per level; written as CSV, JSON and one self-contained HTML page.

The paired difference of a method against the baseline pairs every test example of every seed
and program model (the same examples, the same seed's data), as `graphopt.search.paired` does for
two graphs: it is far less noisy than the difference of two means.
"""

from __future__ import annotations

__all__ = ["summarize", "Row", "write_outputs", "study_html", "t_critical"]

import csv
import json
import math
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from ..lm import LEVELS, levels_shown
from ..search.paired import paired_difference
from ..status import Status
from .spec import StudySpec
from .store import CellRecord

# Two-sided 95% critical values of Student's t by degrees of freedom (1..30); 1.96 beyond.
_T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t_critical(df: int) -> float:
    """The two-sided 95% critical value of Student's t with `df` degrees of freedom."""
    return _T95[df - 1] if 1 <= df <= len(_T95) else 1.96


@dataclass
class Row:
    """One (task, method) of the table.

    Attributes:
        n: cells done (seeds x program models); cells: cells in the grid.
        mean, ci95: mean test score over those cells and the half-width of its 95% interval.
        vs_baseline, vs_se, vs_n: paired difference against the baseline on shared test examples.
        tokens, dollars: spend per level summed over the row's cells.
    """

    task: str
    method: str
    n: int = 0
    cells: int = 0
    mean: float | None = None
    ci95: float | None = None
    scores: list[float] = field(default_factory=list)
    vs_baseline: float | None = None
    vs_se: float | None = None
    vs_n: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    dollars: dict[str, float] = field(default_factory=dict)

    @property
    def score_text(self) -> str:
        if self.mean is None:
            return "n/a"
        return f"{self.mean:.3f} ± {self.ci95:.3f}" if self.ci95 is not None else f"{self.mean:.3f}"

    @property
    def vs_text(self) -> str:
        if self.vs_baseline is None:
            return ""
        return f"{self.vs_baseline:+.3f} ± {self.vs_se:.3f} (n={self.vs_n})"


def _pooled(records: list[CellRecord]) -> dict[str, float]:
    out: dict[str, float] = {}
    for r in records:
        for ex, score in (r.result or {}).get("scores", {}).items():
            out[f"{r.cell.get('seed')}|{r.cell.get('model')}|{ex}"] = float(score)
    return out


def summarize(study: StudySpec, records: list[CellRecord]) -> list[Row]:
    """The table's rows, in the study's order (grid rows, then transfer rows)."""
    groups: dict[tuple[str, str], list[CellRecord]] = {}
    for r in records:
        groups.setdefault((r.cell["task"], r.cell["method"]), []).append(r)
    rows = []
    for (task, method), group in groups.items():
        done = [r for r in group if r.status == Status.done]
        row = Row(task, method, n=len(done), cells=len(group))
        row.scores = [float(r.result["test"]) for r in done]
        if row.scores:
            row.mean = sum(row.scores) / len(row.scores)
            if len(row.scores) > 1:
                sd = math.sqrt(sum((s - row.mean) ** 2 for s in row.scores) / (len(row.scores) - 1))
                row.ci95 = t_critical(len(row.scores) - 1) * sd / math.sqrt(len(row.scores))
        for level in LEVELS:
            levels = [((r.result or {}).get("usage") or {}).get("levels", {}).get(level, {}) for r in group]
            row.tokens[level] = int(sum(u.get("tokens", 0) for u in levels))
            row.dollars[level] = float(sum(u.get("cost", 0.0) for u in levels))
        if study.baseline is not None and method != study.baseline:
            base = [r for r in groups.get((task, study.baseline), []) if r.status == Status.done]
            paired = paired_difference(_pooled(done), _pooled(base))
            if paired.n:
                row.vs_baseline, row.vs_se, row.vs_n = paired.mean, paired.se, paired.n
        rows.append(row)
    return rows


_COLUMNS = ["task", "method", "n", "cells", "mean", "ci95", "vs_baseline", "vs_se", "vs_n"]


def _flat(row: Row) -> dict[str, Any]:
    data = {k: getattr(row, k) for k in _COLUMNS}
    for level in LEVELS:
        data[f"{level}_tokens"] = row.tokens.get(level, 0)
        data[f"{level}_dollars"] = round(row.dollars.get(level, 0.0), 6)
    return data


def write_outputs(study: StudySpec, records: list[CellRecord], out_dir: Path) -> dict[str, Path]:
    """Writes study.csv, study.json and study.html into `out_dir`; returns their paths."""
    rows = summarize(study, records)
    paths = {"csv": out_dir / "study.csv", "json": out_dir / "study.json", "html": out_dir / "study.html"}
    with paths["csv"].open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(_flat(rows[0]).keys()) if rows else _COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(_flat(row))
    payload = {
        "study": study.name,
        "baseline": study.baseline,
        "rows": [{**_flat(r), "scores": r.scores} for r in rows],
        "cells": [{"key": r.key, "status": r.status, "error": r.error, **{k: (r.result or {}).get(k) for k in ("test", "val", "seconds")}} for r in records],
    }
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n")
    paths["html"].write_text(study_html(study, rows, records))
    return paths


def _css() -> str:
    return (Path(__file__).resolve().parent.parent / "viz" / "report.css").read_text()


def study_html(study: StudySpec, rows: list[Row], records: list[CellRecord]) -> str:
    """One self-contained page (inline CSS, no script, no request): the table and every cell."""
    done = sum(1 for r in records if r.status == Status.done)
    shown = levels_shown(lvl for r in rows for lvl, tokens in r.tokens.items() if tokens)
    head = "".join(f"<th>{escape(h)}</th>" for h in ("task", "method", "seeds done", "test (mean ± 95% CI)",
                                                       f"vs {study.baseline or 'baseline'} (paired)", *(f"{lvl} tokens" for lvl in shown), "dollars"))
    body = []
    for r in rows:
        cls = ' class="transfer"' if " from " in r.method else ""
        cells = [escape(r.task), escape(r.method), f"{r.n}/{r.cells}", escape(r.score_text), escape(r.vs_text),
                 *(f"{r.tokens.get(lvl, 0):,}" for lvl in shown), f"${sum(r.dollars.values()):.4f}"]
        body.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    cell_rows = "".join(
        f"<tr><td>{escape(r.key)}</td><td>{escape(r.status)}</td><td>{_test_text(r)}</td><td>{escape(r.error or '')}</td></tr>"
        for r in records
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(study.name)}: study</title>
<style>{_css()}
table.study {{ border-collapse: collapse; background: #fff; margin: 8px 0 18px; }}
table.study th, table.study td {{ border: 1px solid var(--line); padding: 4px 9px; text-align: left; }}
tr.transfer td {{ background: #fbf3ea; }}
main {{ padding: 16px 20px; }}</style></head>
<body><header class="top"><h1>Study {escape(study.name)}</h1>
<p class="sub">{done} of {len(records)} cells done; seeds {escape(', '.join(map(str, study.seeds)))};
baseline {escape(study.baseline or 'none')}</p></header>
<main><section id="results"><h2>Results</h2>
<table class="study" id="study-table"><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>
<p class="note">Mean test score over seeds and program models with a 95% Student-t interval; the paired
difference pools every test example of every seed. Transfer rows (shaded) apply a search's winning graph
from another task.</p></section>
<section id="cells"><h2>Cells</h2><table class="study" id="cell-table"><thead><tr><th>cell</th><th>status</th><th>test</th><th>error</th></tr></thead>
<tbody>{cell_rows}</tbody></table></section></main></body></html>
"""


def _test_text(record: CellRecord) -> str:
    return f"{record.result['test']:.3f}" if record.result and record.result.get("test") is not None else ""
