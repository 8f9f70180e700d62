"""The drawings of the HTML report, laid out in Python as inline SVG (no JavaScript library, no `dot`).

- `lineage_svg`: every candidate of a run, generations as columns, parent -> child edges labelled
  with the mutation; the winner's ancestry is drawn darker.
- `score_chart_svg`: validation score over generations (every candidate, the best so far and the
  population mean).
- `pareto_svg`: validation score against tokens spent, with the Pareto front highlighted.
- `graph_svg`: a small layered drawing of a graph spec, for the side panel and for when Graphviz
  is missing.

Every text is HTML-escaped here; elements that stand for a candidate carry `data-cid` so the
report's script can select it.

Example:
    >>> pareto_front([("a", 10, 0.5), ("b", 20, 0.4), ("c", 30, 0.9)])
    ['a', 'c']
"""

from __future__ import annotations

__all__ = ["ORIGIN_COLORS", "lineage_columns", "lineage_svg", "score_chart_svg", "pareto_front", "pareto_svg", "graph_svg", "svg_defs"]

import math
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any

from ..status import Status

ORIGIN_COLORS = {
    "seed": "#dbe8f8",
    "prompt_opt": "#e6dcf5",
    "mutation": "#dcefdc",
    "crossover": "#fbe5c8",
    "llm": "#f7d9e3",
}
ORIGIN_LABELS = {"seed": "seeds", "prompt_opt": "prompt-tuned", "mutation": "mutated", "crossover": "crossed", "llm": "LLM-proposed"}
INK, MUTED, ACCENT, WINNER = "#1d2733", "#6b7785", "#2f6fb3", "#c7511f"
_BOX_W, _BOX_H, _COL_GAP, _ROW_GAP, _TOP = 150, 42, 104, 22, 34


def _e(text: Any) -> str:
    return escape(str(text), quote=True)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _score(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


# --------------------------------------------------------------------------------- lineage


def lineage_columns(candidates: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """The column of each candidate: generations left to right, and a child right of its parents.

    Within one generation (seeds and their prompt-tuned versions are both generation 0), a child
    gets the column after its rightmost parent, so no edge runs inside a column.
    """
    columns: dict[str, int] = {}
    start = 0
    for generation in sorted({c["generation"] for c in candidates}):
        members = [c for c in candidates if c["generation"] == generation]
        for cand in members:  # insertion order: the store only takes a child after its parents
            columns[cand["id"]] = max([start, *(columns[p] + 1 for p in cand["parents"] if p in columns)])
        start = max(columns[m["id"]] for m in members) + 1
    return columns


def _column_titles(candidates: Sequence[Mapping[str, Any]], columns: Mapping[str, int]) -> dict[int, str]:
    titles: dict[int, str] = {}
    for col in sorted(set(columns.values())):
        members = [c for c in candidates if columns[c["id"]] == col]
        generations = sorted({c["generation"] for c in members})
        origins = sorted({c["origin"] for c in members})
        title = "gen " + ",".join(str(g) for g in generations)
        if generations == [0] and len(origins) == 1:
            title += " · " + ORIGIN_LABELS.get(origins[0], origins[0])
        titles[col] = title
    return titles


def lineage_svg(candidates: Sequence[Mapping[str, Any]], winner: str | None, ancestry: Iterable[str]) -> str:
    """The lineage of every candidate as SVG.

    Args:
        candidates: dicts with id, name, generation, origin, mutation, parents, status, val.
        winner: the winner's id, drawn with a thick border.
        ancestry: ids of the winner and its ancestors; edges between them are drawn darker.

    Returns:
        An `<svg>` element.
    """
    if not candidates:
        return '<p class="empty">No candidate yet.</p>'
    on_path = set(ancestry)
    columns = lineage_columns(candidates)
    rows: dict[str, int] = {}
    by_column: dict[int, list[Mapping[str, Any]]] = {}
    for cand in candidates:
        by_column.setdefault(columns[cand["id"]], []).append(cand)
    for col in sorted(by_column):
        def weight(cand: Mapping[str, Any]) -> float:  # barycentre of the parents: fewer crossings
            placed = [rows[p] for p in cand["parents"] if p in rows]
            return sum(placed) / len(placed) if placed else math.inf
        ordered = sorted(by_column[col], key=lambda c: (weight(c), c["seq"]))
        for index, cand in enumerate(ordered):
            rows[cand["id"]] = index
    ncols = max(columns.values()) + 1
    nrows = max(rows.values()) + 1
    width = ncols * _BOX_W + (ncols - 1) * _COL_GAP + 20
    height = _TOP + nrows * (_BOX_H + _ROW_GAP) + 10

    def pos(cid: str) -> tuple[float, float]:
        return 10 + columns[cid] * (_BOX_W + _COL_GAP), _TOP + rows[cid] * (_BOX_H + _ROW_GAP)

    parts = [f'<svg class="lineage" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="lineage of every candidate">']
    for col, title in _column_titles(candidates, columns).items():
        x = 10 + col * (_BOX_W + _COL_GAP) + _BOX_W / 2
        parts.append(f'<text class="coltitle" x="{x:.0f}" y="16" text-anchor="middle">{_e(title)}</text>')
    labels = []
    for cand in candidates:
        for parent in cand["parents"]:
            if parent not in columns:
                continue
            (px, py), (cx, cy) = pos(parent), pos(cand["id"])
            x1, y1, x2, y2 = px + _BOX_W, py + _BOX_H / 2, cx, cy + _BOX_H / 2
            hot = parent in on_path and cand["id"] in on_path
            cls = "edge hot" if hot else "edge"
            parts.append(f'<path class="{cls}" d="{_edge_path(x1, y1, x2, y2)}" marker-end="url(#arrow{"-hot" if hot else ""})"/>')
            label = _short(cand.get("mutation") or cand["origin"], 17)
            ly = (y1 + y2) / 2 if x2 - x1 <= _COL_GAP + 1 else (_lane(y1, y2) + y2) / 2
            labels.append(f'<text class="elabel{" hot" if hot else ""}" x="{x2 - _COL_GAP / 2:.0f}" y="{ly - 4:.0f}" text-anchor="middle">{_e(label)}</text>')
    parts += labels
    for cand in candidates:
        x, y = pos(cand["id"])
        classes = ["cand", f"st-{cand['status']}"] + (["winner"] if cand["id"] == winner else [])
        fill = ORIGIN_COLORS.get(cand["origin"], "#eeeeee")
        tip = f"{cand['id']} {cand['name']}\n{cand['origin']}{' · ' + cand['mutation'] if cand.get('mutation') else ''}\nval {_score(cand.get('val'))} · {cand['status']}"
        head = f"{cand['id']}  {_score(cand.get('val'))}" if cand["status"] == Status.done else f"{cand['id']}  {cand['status']}"
        star = "★ " if cand["id"] == winner else ""
        parts.append(
            f'<g class="{" ".join(classes)}" data-cid="{_e(cand["id"])}" tabindex="0" role="button" transform="translate({x:.0f},{y:.0f})">'
            f"<title>{_e(tip)}</title>"
            f'<rect width="{_BOX_W}" height="{_BOX_H}" rx="7" fill="{fill}"/>'
            f'<text class="head" x="8" y="17">{_e(star + head)}</text>'
            f'<text class="sub" x="8" y="33">{_e(_short(cand["name"], 22))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _lane(y1: float, y2: float) -> float:
    """The gap between rows nearest to the middle of an edge: where a long edge runs."""
    pitch = _BOX_H + _ROW_GAP
    return _TOP - _ROW_GAP / 2 + math.floor(((y1 + y2) / 2 - _TOP + _ROW_GAP / 2) / pitch + 0.5) * pitch


def _edge_path(x1: float, y1: float, x2: float, y2: float) -> str:
    """A parent -> child curve; across more than one column it runs in the gap between rows, never behind a box."""
    half = _COL_GAP / 2
    if x2 - x1 <= _COL_GAP + 1:
        return f"M{x1:.0f},{y1:.0f} C{x1 + half:.0f},{y1:.0f} {x2 - half:.0f},{y2:.0f} {x2 - 4:.0f},{y2:.0f}"
    lane = _lane(y1, y2)
    return (
        f"M{x1:.0f},{y1:.0f} C{x1 + half:.0f},{y1:.0f} {x1 + half:.0f},{lane:.0f} {x1 + _COL_GAP:.0f},{lane:.0f} "
        f"L{x2 - _COL_GAP:.0f},{lane:.0f} C{x2 - half:.0f},{lane:.0f} {x2 - half:.0f},{y2:.0f} {x2 - 4:.0f},{y2:.0f}"
    )


def svg_defs() -> str:
    """The arrow heads every drawing refers to: include once per page (ids must be unique)."""
    return (
        '<svg class="defs" width="0" height="0" aria-hidden="true"><defs>'

        f'<marker id="arrow" viewBox="0 0 8 8" refX="6" refY="4" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="{MUTED}"/></marker>'
        f'<marker id="arrow-hot" viewBox="0 0 8 8" refX="6" refY="4" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="{WINNER}"/></marker>'
        "</defs></svg>"
    )


# ---------------------------------------------------------------------------------- charts


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    return [round(first + i * step, 10) for i in range(int((high - first) / step + 1e-9) + 1)]


def _fmt_tick(value: float) -> str:
    if abs(value) >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


class _Frame:
    """A plot area with axes: maps data to pixels and draws grid, ticks and axis titles."""

    def __init__(self, xs: tuple[float, float], ys: tuple[float, float], x_title: str, y_title: str, *, x_integer: bool = False):
        self.w, self.h, self.left, self.right, self.top, self.bottom = 440, 260, 52, 14, 14, 44
        self.x0, self.x1 = xs if xs[1] > xs[0] else (xs[0], xs[0] + 1)
        self.y0, self.y1 = ys if ys[1] > ys[0] else (ys[0], ys[0] + 1)
        self.x_title, self.y_title, self.x_integer = x_title, y_title, x_integer

    def x(self, value: float) -> float:
        return self.left + (value - self.x0) / (self.x1 - self.x0) * (self.w - self.left - self.right)

    def y(self, value: float) -> float:
        return self.h - self.bottom - (value - self.y0) / (self.y1 - self.y0) * (self.h - self.top - self.bottom)

    def axes(self) -> list[str]:
        out = []
        for t in _ticks(self.y0, self.y1):
            out.append(f'<line class="grid" x1="{self.left}" x2="{self.w - self.right}" y1="{self.y(t):.1f}" y2="{self.y(t):.1f}"/>')
            out.append(f'<text class="tick" x="{self.left - 6}" y="{self.y(t) + 4:.1f}" text-anchor="end">{_fmt_tick(t)}</text>')
        xt = _ticks(self.x0, self.x1)
        if self.x_integer:
            xt = [float(g) for g in range(math.ceil(self.x0), math.floor(self.x1) + 1)] if self.x1 - self.x0 <= 13 else [t for t in xt if t == int(t)]
        for t in xt:
            out.append(f'<text class="tick" x="{self.x(t):.1f}" y="{self.h - self.bottom + 16}" text-anchor="middle">{_fmt_tick(t)}</text>')
        base = self.h - self.bottom
        out.append(f'<line class="axis" x1="{self.left}" x2="{self.w - self.right}" y1="{base}" y2="{base}"/>')
        out.append(f'<line class="axis" x1="{self.left}" x2="{self.left}" y1="{self.top}" y2="{base}"/>')
        out.append(f'<text class="atitle" x="{(self.left + self.w - self.right) / 2:.0f}" y="{self.h - 6}" text-anchor="middle">{_e(self.x_title)}</text>')
        out.append(f'<text class="atitle" transform="translate(13,{(self.top + base) / 2:.0f}) rotate(-90)" text-anchor="middle">{_e(self.y_title)}</text>')
        return out

    def svg(self, css_class: str, label: str, body: list[str]) -> str:
        return (
            f'<svg class="chart {css_class}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.w} {self.h}" role="img" aria-label="{_e(label)}">'
            + "".join(self.axes() + body)
            + "</svg>"
        )


def _score_range(values: Iterable[float]) -> tuple[float, float]:
    """Scores are mostly accuracies: show 0 to 1 at least, with room for the points at the edges."""
    values = list(values)
    low, high = min([0.0, *values]), max([1.0, *values])
    pad = (high - low) * 0.04
    return low - pad, high + pad


def _dot(frame: _Frame, x: float, y: float, cid: str, tip: str, css: str, r: float = 4.5, dx: float = 0) -> str:
    return (
        f'<circle class="{css}" data-cid="{_e(cid)}" cx="{frame.x(x) + dx:.1f}" cy="{frame.y(y):.1f}" r="{r}">'
        f"<title>{_e(tip)}</title></circle>"
    )


def score_chart_svg(
    points: Sequence[tuple[str, int, float]],
    best: Sequence[tuple[int, float]],
    population: Sequence[tuple[int, float]],
    winner: str | None,
) -> str:
    """Validation score over generations.

    Args:
        points: (candidate id, generation, val score) of every scored candidate.
        best: (generation, best val score so far).
        population: (generation, mean val score of the population kept).
        winner: the winner's id, circled.
    """
    if not points:
        return '<p class="empty">No candidate scored yet.</p>'
    last = max(g for _, g, _ in points)
    frame = _Frame((-0.4, max(1, last) + 0.4), _score_range(v for _, _, v in points), "generation", "validation score", x_integer=True)
    body = []
    seen: dict[tuple[int, float], int] = {}
    for cid, generation, val in points:  # candidates with the same score side by side, so each stays visible
        n = seen.get((generation, val), 0)
        seen[(generation, val)] = n + 1
        shift = (n + 1) // 2 * (1 if n % 2 else -1) * 7
        css = "pt win" if cid == winner else "pt"
        body.append(_dot(frame, generation, val, cid, f"{cid} · gen {generation} · val {val:.3f}", css, 6 if cid == winner else 4.5, shift))
    for series, css in ((population, "line pop"), (best, "line best")):
        if series:
            coords = " ".join(f"{frame.x(g):.1f},{frame.y(v):.1f}" for g, v in series)
            body.append(f'<polyline class="{css}" points="{coords}"/>')
    body.append(_legend(frame, [("line best", "best so far"), ("line pop", "population mean"), ("pt", "candidate")]))
    return frame.svg("scores", "validation score over generations", body)


def pareto_front(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """Ids of the points no other point beats on both cost (lower) and score (higher), cheapest first."""
    front, best_score = [], -math.inf
    for cid, _cost, score in sorted(points, key=lambda p: (p[1], -p[2])):
        if score > best_score:
            front.append(cid)
            best_score = score
    return front


def pareto_svg(points: Sequence[tuple[str, float, float]], winner: str | None) -> str:
    """Validation score against tokens, the Pareto front joined by a step line.

    Args:
        points: (candidate id, tokens, val score) of every scored candidate.
        winner: the winner's id, circled.
    """
    if not points:
        return '<p class="empty">No candidate scored yet.</p>'
    front = pareto_front(points)
    costs = [c for _, c, _ in points]
    span = max(costs) - min(costs)
    low = max(0.0, min(costs) - span * 0.08) if span else max(0.0, min(costs) - 1)
    high = max(costs) + (span * 0.08 if span else 1)
    frame = _Frame((low, high), _score_range(s for _, _, s in points), "tokens per evaluation (program + optimizer + meta)", "validation score")
    by_id = {cid: (cost, score) for cid, cost, score in points}
    steps = []
    for i, cid in enumerate(front):
        cost, score = by_id[cid]
        if i:
            steps.append(f"{frame.x(cost):.1f},{frame.y(by_id[front[i - 1]][1]):.1f}")
        steps.append(f"{frame.x(cost):.1f},{frame.y(score):.1f}")
    body = [f'<polyline class="line front" points="{" ".join(steps)}"/>']
    on_front = set(front)
    for cid, cost, score in sorted(points, key=lambda p: p[0] in on_front):
        css = "pt" + (" front" if cid in on_front else "") + (" win" if cid == winner else "")
        tip = f"{cid} · {cost:,.0f} tokens · val {score:.3f}" + (" · on the Pareto front" if cid in on_front else "")
        body.append(_dot(frame, cost, score, cid, tip, css, 6 if cid == winner else 4.5))
    body.append(_legend(frame, [("pt front", "Pareto front"), ("pt", "other candidate"), ("pt win", "winner")]))
    return frame.svg("pareto", "validation score against tokens", body)


def _legend(frame: _Frame, items: Sequence[tuple[str, str]]) -> str:
    x, y = frame.left + 10, frame.h - frame.bottom - 14 * len(items)
    out = [f'<g class="legend" transform="translate({x},{y})"><rect x="-4" y="-8" width="118" height="{14 * len(items) + 2}" rx="3"/>']
    for i, (css, text) in enumerate(items):
        if css.startswith("line"):
            out.append(f'<line class="{css}" x1="0" x2="16" y1="{i * 14}" y2="{i * 14}"/>')
        else:
            out.append(f'<circle class="{css}" cx="8" cy="{i * 14}" r="4"/>')
        out.append(f'<text class="tick" x="22" y="{i * 14 + 4}">{_e(text)}</text>')
    out.append("</g>")
    return "".join(out)


# ------------------------------------------------------------------------------ graph spec


def graph_svg(spec: Mapping[str, Any], *, css_class: str = "mini", vertical: bool = True) -> str:
    """A small layered drawing of a graph spec dict: `input`, its nodes (id and operator), edges.

    Used in the side panel for every candidate (top to bottom, to fit a narrow panel), and for
    the winner when Graphviz is missing (left to right). Edges that skip a layer bend around
    the boxes in between instead of running behind them.
    """
    nodes = [("input", "entry")] + [(str(n.get("id")), str(n.get("op"))) for n in spec.get("nodes", [])]
    ids = [n for n, _ in nodes]
    edges = []
    for edge in spec.get("edges", []):
        source, target = str(edge.get("source", "")).split(".")[0], str(edge.get("target", "")).split(".")[0]
        if source in ids and target in ids and (source, target) not in edges:
            edges.append((source, target))
    depth = {n: 0 for n in ids}
    for _ in ids:  # longest path from the entry, bounded so that a cyclic (invalid) spec ends too
        for source, target in edges:
            depth[target] = max(depth[target], min(depth[source] + 1, len(ids)))
    slot: dict[str, int] = {}
    counts: dict[int, int] = {}
    for n in ids:
        slot[n] = counts.get(depth[n], 0)
        counts[depth[n]] = slot[n] + 1
    bw, bh, bend = 112, 36, 44
    step_layer, step_slot = (bh + 28, bw + 12) if vertical else (bw + 34, bh + 12)
    widest = max(counts.values())

    def pos(n: str) -> tuple[float, float]:  # top-left corner
        along = 4 + depth[n] * step_layer
        across = 4 + (widest - counts[depth[n]]) * step_slot / 2 + slot[n] * step_slot
        return (across, along) if vertical else (along, across)

    layers = max(depth.values()) + 1
    size_layer, size_slot = layers * step_layer - step_layer + (bh if vertical else bw) + 8, widest * step_slot - step_slot + (bw if vertical else bh) + 8 + bend
    width, height = (size_slot, size_layer) if vertical else (size_layer, size_slot)
    parts = [f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="graph {_e(spec.get("name", ""))}">']
    for source, target in edges:
        (sx, sy), (tx, ty) = pos(source), pos(target)
        if depth[target] <= depth[source]:
            continue  # only an invalid (cyclic) spec has these
        if depth[target] - depth[source] == 1 and vertical:
            d = f"M{sx + bw / 2:.0f},{sy + bh} C{sx + bw / 2:.0f},{sy + bh + 14} {tx + bw / 2:.0f},{ty - 14} {tx + bw / 2:.0f},{ty - 3}"
        elif depth[target] - depth[source] == 1:
            d = f"M{sx + bw},{sy + bh / 2:.0f} C{sx + bw + 17},{sy + bh / 2:.0f} {tx - 17},{ty + bh / 2:.0f} {tx - 3},{ty + bh / 2:.0f}"
        elif vertical:  # around the right side
            d = f"M{sx + bw},{sy + bh / 2:.0f} C{sx + bw + bend},{sy + bh / 2:.0f} {tx + bw + bend},{ty + bh / 2:.0f} {tx + bw + 3},{ty + bh / 2:.0f}"
        else:  # around the bottom
            d = f"M{sx + bw / 2:.0f},{sy + bh} C{sx + bw / 2:.0f},{sy + bh + bend} {tx + bw / 2:.0f},{ty + bh + bend} {tx + bw / 2:.0f},{ty + bh + 3}"
        parts.append(f'<path class="edge" d="{d}" marker-end="url(#arrow)"/>')
    for n, op in nodes:
        x, y = pos(n)
        css = "gnode entry" if n == "input" else "gnode"
        parts.append(
            f'<g class="{css}" transform="translate({x:.0f},{y:.0f})"><rect width="{bw}" height="{bh}" rx="6"/>'
            f'<text class="head" x="6" y="15">{_e(_short(n, 17))}</text><text class="sub" x="6" y="29">{_e(_short(op, 18))}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
