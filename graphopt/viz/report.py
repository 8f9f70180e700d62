"""The HTML report of a search run: one self-contained file (inline CSS, JS and SVG, no network).

It shows which composition won, how it came about and what it cost: the run's header, the
winning graph with every node's prompts diffed against its seed ancestor's, score and Pareto
plots, the lineage of every candidate, a sortable table and the spend per level. It only reads
the run store, so it works on a run that is still going or was interrupted.

All text from the store is HTML-escaped; the data the script needs is embedded as JSON in a
`<script type="application/json">` block with `<`, `>` and `&` escaped, and a Content Security
Policy allows only the report's own script to run.

Example:
    >>> import tempfile
    >>> from graphopt.store import RunStore
    >>> run_dir = tempfile.mkdtemp()
    >>> with RunStore.open(run_dir) as store:
    ...     _ = store.ensure_run({"task": "word_sorting", "models": {"program": "local"}})
    ...     _ = store.add_candidate({"name": "g", "nodes": [], "edges": []}, "h1")
    >>> write_report(run_dir).name
    'report.html'
"""

from __future__ import annotations

__all__ = ["REPORT_FILENAME", "write_report", "build_report", "candidate_spec"]

import difflib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from ..errors import ConfigError, GraphoptError, did_you_mean
from ..graph.spec import GraphSpec
from ..status import Status
from ..store import SPEND_LEVELS, CandidateRow, EventRow, RunRow, RunStore
from ..store.events import GenerationDone, typed
from ..store.shared import open_run_store
from . import report_assets as assets
from .report_page import render_page

REPORT_FILENAME = "report.html"


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Writes the HTML report of the run in `run_dir`.

    Args:
        run_dir: a search's output directory (it holds `run.sqlite`).
        out: the file to write; defaults to `run_dir/report.html`.

    Returns:
        The path written.

    The store is opened read-only (`RunStore.open(read_only=True)`): the run directory may be
    read-only, and a file that is not a run store is refused in one line.

    Raises:
        ConfigError: there is no run store in `run_dir`, or the file cannot be written.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"no run directory {run_dir}")
    path = Path(out) if out is not None else run_dir / REPORT_FILENAME
    with open_run_store(run_dir, read_only=True) as store:
        text = build_report(store, source=str(run_dir))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        hint = "; write it elsewhere with -o FILE" if out is None else ""
        reason = exc.strerror or str(exc)
        if isinstance(exc, (FileExistsError, NotADirectoryError)):  # a file where a folder must be
            blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), path.parent)
            reason = f"{blocker} is a file, not a directory"
        elif path.is_dir():
            reason = "it is a directory; give a file name such as report.html"
        raise ConfigError(f"cannot write {path}: {reason}{hint}") from None
    return path


def candidate_spec(run_dir: str | Path, ref: str) -> GraphSpec:
    """The graph of one candidate of a run, by id or graph hash ("best" for the winner).

    Raises:
        ConfigError: no run store in `run_dir`, or no such candidate (with the close ids).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"no run directory {run_dir}")
    with open_run_store(run_dir, read_only=True) as store:
        row = _Run.read(store).winner if ref == "best" else store.candidate(ref)
        if row is None:
            ids = [c.id for c in store.candidates()]
            hint = did_you_mean(ref, ids) or (f" (it has {ids[0]} to {ids[-1]})" if ids else " (it has none yet)")
            raise ConfigError(f"no candidate {ref!r} in {run_dir}{hint}")
    return GraphSpec.model_validate(row.spec)


@dataclass
class _Run:
    """Everything the report reads from the store, read once."""

    run: RunRow | None
    candidates: list[CandidateRow]
    events: list[EventRow]
    usage: dict[str, Any]
    winner: CandidateRow | None
    final: bool  # the pipeline chose the winner (else it is the best scored so far)

    @classmethod
    def read(cls, store: RunStore) -> _Run:
        run = store.run()
        candidates = store.candidates()
        by_id = {c.id: c for c in candidates}
        chosen = (run.summary or {}).get("best") if run else None
        winner = by_id.get(chosen) if chosen else None
        return cls(run, candidates, store.events(), store.usage_totals(), winner or store.best(), winner is not None)

    @property
    def by_id(self) -> dict[str, CandidateRow]:
        return {c.id: c for c in self.candidates}


def build_report(store: RunStore, *, source: str = "") -> str:
    """The report of the store's run as one HTML page.

    Args:
        store: an open run store (only read).
        source: where the run lives, shown in the header.

    Returns:
        The HTML text.
    """
    data = _Run.read(store)
    rows = [_candidate_data(c, seq) for seq, c in enumerate(data.candidates, 1)]
    children: dict[str, list[str]] = {}
    for row in rows:
        for parent in row["parents"]:
            children.setdefault(parent, []).append(row["id"])
    for row in rows:
        row["children"] = children.get(row["id"], [])
    winner = data.winner.id if data.winner else None
    ancestry = _ancestry(data.by_id, winner)
    drawings = {
        "lineage": assets.lineage_svg(rows, winner, ancestry),
        "scores": assets.score_chart_svg(*_score_series(rows, data.events), winner),
        "pareto": assets.pareto_svg([(r["id"], r["total_tokens"], r["val"]) for r in rows if r["val"] is not None], winner),
        "best": _best_drawing(data.winner),
        "minis": {r["id"]: assets.graph_svg(c.spec) for r, c in zip(rows, data.candidates)},
        "defs": assets.svg_defs(),
    }
    payload = {"winner": winner, "final": data.final, "status": data.run.status if data.run else "unknown", "candidates": rows}
    prompts = _prompt_sections(data) if data.winner else []
    return render_page(data, rows, drawings, prompts, _chain(data.by_id, winner), _json_block(payload), source)


# ------------------------------------------------------------------------------------- data


def _finite(value: float | None) -> float | None:
    """A score or cost, or None for a missing or non-finite one (JSON has no NaN)."""
    return value if value is not None and math.isfinite(value) else None


def _candidate_data(c: CandidateRow, seq: int) -> dict[str, Any]:
    e = c.evaluation
    done = e is not None and e.status == Status.done
    spent = e is not None and e.status in (Status.done, Status.failed, Status.screened)
    tokens = {level: getattr(e, f"{level}_tokens") if spent else None for level in SPEND_LEVELS}
    spend = [v for v in tokens.values() if v is not None]
    spec = c.spec or {}
    program = (e.program or {}) if e is not None else {}
    return {
        "id": c.id,
        "seq": seq,
        "name": c.name,
        "generation": c.generation,
        "origin": c.origin,
        "mutation": c.mutation,
        "parents": list(c.parents),
        "status": e.status if e is not None else Status.pending,
        "val": _finite(e.val_score) if done else None,
        "val_stderr": _finite(e.val_stderr) if done else None,
        "screen": _finite(e.val_score) if e is not None and e.status == Status.screened else None,
        "test": _finite(e.test_score) if e is not None else None,
        "test_stderr": _finite(e.test_stderr) if e is not None else None,
        "tokens": tokens,
        "total_tokens": sum(spend) if spend else None,
        "dollars": _finite(e.dollars) if e is not None and spend else None,
        "error": e.error if e is not None else None,
        "instruction": program.get("instruction") if isinstance(program, Mapping) else None,
        "nodes": [
            {"id": n.get("id"), "op": n.get("op"), "overrides": sorted(n.get("prompts") or {})} for n in spec.get("nodes", [])
        ],
        "edges": [f"{edge.get('source')} → {edge.get('target')}" for edge in spec.get("edges", [])],
    }


def _ancestry(by_id: Mapping[str, CandidateRow], start: str | None) -> set[str]:
    seen: set[str] = set()
    todo = [start] if start else []
    while todo:
        cid = todo.pop()
        if cid in seen or cid not in by_id:
            continue
        seen.add(cid)
        todo.extend(by_id[cid].parents)
    return seen


def _chain(by_id: Mapping[str, CandidateRow], start: str | None) -> list[CandidateRow]:
    """The winner's line back to its seed, oldest first, following each first parent."""
    chain: list[CandidateRow] = []
    cid = start
    while cid in by_id and all(c.id != cid for c in chain):
        chain.append(by_id[cid])
        if by_id[cid].origin == "seed" or not by_id[cid].parents:
            break
        cid = by_id[cid].parents[0]
    return chain[::-1]


def _score_series(rows: list[dict[str, Any]], events: list[EventRow]) -> tuple[list, list, list]:
    points = [(r["id"], r["generation"], r["val"]) for r in rows if r["val"] is not None]
    best, top = [], None
    for generation in range(max((g for _, g, _ in points), default=-1) + 1):
        scores = [v for _, g, v in points if g == generation]
        if scores:
            top = max([*scores, top] if top is not None else scores)
        if top is not None:
            best.append((generation, top))
    val = {r["id"]: r["val"] for r in rows}
    population = []
    for done in typed(events, GenerationDone):
        scores = [val.get(cid) for cid in done.population]
        scores = [s for s in scores if s is not None]
        if scores:
            population.append((done.generation, sum(scores) / len(scores)))
    population = sorted(dict(population).items())  # a resumed run repeats generations: keep the last
    return points, best, population


def _best_drawing(winner: CandidateRow | None) -> str:
    if winner is None:
        return '<p class="empty">No candidate scored yet.</p>'
    try:
        from .dot import to_svg

        svg = to_svg(GraphSpec.model_validate(winner.spec))
    except Exception:  # noqa: BLE001  (no Graphviz, or a spec dot cannot draw: use the simple drawing)
        note = '<p class="note">Drawn without Graphviz (install it for the full drawing with prompts as tooltips).</p>'
        return note + assets.graph_svg(winner.spec, css_class="bestgraph fallback", vertical=False)
    svg = svg[svg.index("<svg") :]
    head = re.match(r'<svg width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    if head:
        width = float(head.group(1)) * 4 / 3
        svg = f'<svg class="bestgraph" style="max-width:{width:.0f}px"' + svg[head.end() :]
    return svg


def _json_block(payload: Any) -> str:
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, allow_nan=False, default=str)
    # No "</script>" or "<!--" can end or confuse the data block; the JSON still parses the same.
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


# ---------------------------------------------------------------------------------- prompts


@dataclass
class PromptView:
    """One prompt of a node of the winner, next to the same prompt in the seed ancestor."""

    node: str
    op: str
    name: str
    origin: str  # "override" or "default"
    text: str
    seed_text: str | None  # None: the seed has no such node or prompt
    node_is_new: bool

    @property
    def changed(self) -> bool:
        return self.seed_text is not None and self.seed_text != self.text

    def diff_html(self) -> tuple[str, int, int]:
        """The text as lines marked added/removed against the seed's, and the counts of each."""
        new = self.text.splitlines()
        old = self.seed_text.splitlines() if self.seed_text is not None else new
        out, added, removed = [], 0, 0
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
            if tag == "equal":
                out += [_line("eq", " ", line) for line in new[j1:j2]]
                continue
            out += [_line("del", "−", line) for line in old[i1:i2]]
            out += [_line("add", "+", line) for line in new[j1:j2]]
            removed += i2 - i1
            added += j2 - j1
        return "".join(out), added, removed


def _line(css: str, mark: str, text: str) -> str:
    return f'<span class="ln {css}"><span class="mark" aria-hidden="true">{mark}</span>{escape(text) or " "}</span>'


def _node_prompts(node: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(name, text, "override"|"default") of every prompt a node uses."""
    from ..operators.registry import get_operator

    try:
        defaults = {name: prompt.text for name, prompt in get_operator(str(node.get("op"))).prompts.items()}
    except GraphoptError:
        defaults = {}
    overrides = node.get("prompts") or {}
    names = list(defaults) + [n for n in sorted(overrides) if n not in defaults]
    return [(n, str(overrides[n]), "override") if n in overrides else (n, defaults[n], "default") for n in names]


def _prompt_sections(data: _Run) -> list[PromptView]:
    chain = _chain(data.by_id, data.winner.id if data.winner else None)
    seed = chain[0] if chain and chain[0].origin == "seed" else None
    seed_nodes = {str(n.get("id")): n for n in (seed.spec.get("nodes", []) if seed else [])}
    views = []
    for node in data.winner.spec.get("nodes", []) if data.winner else []:
        before = seed_nodes.get(str(node.get("id")))
        before_op = before is not None and before.get("op") == node.get("op")
        seed_texts = {name: text for name, text, _ in _node_prompts(before)} if before_op else {}
        for name, text, origin in _node_prompts(node):
            views.append(PromptView(str(node.get("id")), str(node.get("op")), name, origin, text, seed_texts.get(name), not before_op))
    return views
