"""The HTML of the search report: header, winner, plots, lineage, table and log, in one page.

`graphopt.viz.report` reads the store and draws; this module writes the sections around the
drawings and fills the page template (`report.html.tmpl` with `report.css` and `report.js`).
Every string from the store goes through `escape` here.
"""

from __future__ import annotations

__all__ = ["render_page", "script_hash", "asset_text"]

import base64
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from importlib import resources
from typing import TYPE_CHECKING, Any

from .. import __version__
from ..status import Status
from ..store import SPEND_LEVELS, CandidateRow
from ..store.events import InferenceCost, typed
from .report_assets import ORIGIN_COLORS, ORIGIN_LABELS

if TYPE_CHECKING:
    from .report import PromptView, _Run

DASH = "—"
STATUS_NOTES = {
    "running": "still running, or its process died before it could record the end",
    "interrupted": "stopped early; continue it with graphopt search --resume",
    "failed": "stopped by an error",
    "finished": "",
}
_COLUMNS = (  # header, sort type, tooltip
    ("id", "text", "candidate id, in the order the search made them"),
    ("name", "text", "graph name"),
    ("gen", "num", "generation"),
    ("made by", "text", "the mutation (or origin) that made the candidate"),
    ("parents", "text", "parent candidates"),
    ("val", "num", "validation score ± standard error (or the evaluation's status)"),
    ("test", "num", "test score (read only for reported candidates)"),
    ("program", "num", "program-model tokens of the evaluation"),
    ("optimizer", "num", "optimizer-model tokens of the evaluation"),
    ("meta", "num", "meta-model tokens of the evaluation"),
    ("total", "num", "all tokens of the evaluation"),
    ("$", "num", "dollars of the evaluation"),
)


_NAV = " · ".join(
    f'<a href="#{anchor}">{text}</a>'
    for anchor, text in (("winner", "winner"), ("progress", "progress"), ("lineage", "lineage"), ("prompts", "prompts"), ("candidates", "every candidate"), ("log", "run log"))
)


def _e(text: Any) -> str:
    return escape(str(text), quote=True)


def _num(value: float | int | None) -> str:
    return DASH if value is None else f"{value:,.0f}"


def _score(value: float | None, stderr: float | None = None) -> str:
    if value is None:
        return DASH
    return f"{value:.3f}" + (f" ± {stderr:.3f}" if stderr else "")


def _usd(value: float | None) -> str:
    if value is None:
        return DASH
    return "$0" if value == 0 else f"${value:,.4f}"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else DASH


def _v(value: Any) -> str:
    """A table cell's sort key (empty: missing, sorted last)."""
    return "" if value is None else _e(value)


def script_hash(script: str) -> str:
    """The Content Security Policy source that allows exactly this inline script."""
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


def asset_text(name: str) -> str:
    """A file shipped next to this module: the page template, its CSS or its script."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def render_page(
    data: _Run,
    rows: Sequence[Mapping[str, Any]],
    drawings: Mapping[str, Any],
    prompts: Sequence[PromptView],
    chain: Sequence[CandidateRow],
    json_block: str,
    source: str,
) -> str:
    """Fills the page template. All arguments come from `graphopt.viz.report.build_report`."""
    task = (data.run.config.get("task") if data.run else None) or "unknown task"
    body = "".join(
        [
            drawings["defs"],
            _header(data, rows, source),
            '<div class="layout"><main>',
            *_winner(data, chain, prompts, drawings["best"], _progress(drawings) + _lineage(drawings["lineage"])),
            _table(rows, data.winner.id if data.winner else None),
            _log(data),
            '</main><aside id="details" aria-live="polite"><div class="panel">'
            '<p class="hint">Click a candidate in the lineage, a plot or the table to see it here.</p>'
            '<div id="panel-body"></div></div></aside></div>',
            '<div id="minis" hidden>',
            *(f'<template data-cid="{_e(cid)}">{svg}</template>' for cid, svg in drawings["minis"].items()),
            "</div>",
        ]
    )
    script = asset_text("report.js")
    values = {
        "title": _e(f"graphopt report: {task}"),
        "version": _e(__version__),
        "script_hash": script_hash(script),
        "css": asset_text("report.css"),
        "body": body,
        "data": json_block,
        "js": script,
    }
    # One pass, so text inserted for one placeholder is never searched for the next.
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], asset_text("report.html.tmpl"))


# ---------------------------------------------------------------------------------- sections


def _status_text(row: Mapping[str, Any]) -> str:
    """The val cell of an evaluation without a full score: its status (and a screen's score)."""
    if row["status"] == Status.screened and row.get("screen") is not None:
        return f"screened {row['screen']:.3f}"
    return row["status"]


def _header(data: _Run, rows: Sequence[Mapping[str, Any]], source: str) -> str:
    run = data.run
    config = run.config if run else {}
    status = run.status if run else "unknown"
    note = STATUS_NOTES.get(status, "")
    counts = {s: sum(1 for r in rows if r["status"] == s) for s in (Status.done, Status.screened, Status.pending, Status.running, Status.failed)}
    rejected = len([e for e in data.events if e.kind == "rejected_proposal"])
    stops = [e for e in data.events if e.kind == "stop" and isinstance(e.payload, Mapping)]
    stop = ((run.summary or {}).get("stop_reason") if run else None) or (stops[-1].payload.get("reason") if stops else None)
    generations = max((r["generation"] for r in rows), default=0)
    budget = (config.get("budget") or {}).get("name") if isinstance(config.get("budget"), Mapping) else None
    win = data.winner
    w = next((r for r in rows if win and r["id"] == win.id), None)
    winner_card = (
        f'<div class="big">{_e(win.name)}</div><div><button class="link" data-cid="{_e(win.id)}">{_e(win.id)}</button>'
        f" · val <b>{_score(w['val'], w['val_stderr'])}</b> · test <b>{_score(w['test'], w['test_stderr'])}</b></div>"
        if win and w
        else '<div class="big">none yet</div><div>no candidate scored</div>'
    )
    total = data.usage["total"]
    cards = [
        ("win", "Winner" if data.final else "Best so far", winner_card),
        ("", "Candidates", f'<div class="big">{len(rows)}</div><div>{counts[Status.done]} scored · {counts[Status.screened]} screened out · {counts[Status.pending] + counts[Status.running]} pending · '
         f'{counts[Status.failed]} failed · {rejected} proposal{"s" if rejected != 1 else ""} rejected</div>'),
        ("", "Stopped because", f'<div class="big small">{_e(stop or ("not yet" if status == "running" else DASH))}</div>'
         f"<div>{generations} generation{'s' if generations != 1 else ''}{' · budget ' + _e(budget) if budget else ''}</div>"),
        ("", "Spent", f'<div class="big">{_num(total["tokens"])} tokens</div><div>{_usd(total["cost"])} · {_num(total["calls"])} calls</div>'),
    ]
    card_html = "".join(f'<div class="card {css}"><h3>{title}</h3>{inner}</div>' for css, title, inner in cards)
    task_source = f' <span class="muted">({_e(config["task_source"])})</span>' if config.get("task_source") else ""
    return (
        f'<header class="top"><h1>{_e(config.get("task") or "unknown task")}{task_source} '
        f'<span class="status st-{_e(status)}">{_e(status)}</span></h1>'
        f'<p class="sub">graphopt search report{" of " + _e(source) if source else ""} · started {_when(run.created_at if run else None)}'
        f' · last write {_when(run.updated_at if run else None)}{" · " + _e(note) if note else ""}</p>'
        f'<div class="cards">{card_html}</div>{_usage(data, config)}<nav>{_NAV}</nav></header>'
    )


def _usage(data: _Run, config: Mapping[str, Any]) -> str:
    models = config.get("models") if isinstance(config.get("models"), Mapping) else {}
    head = "".join(f"<th>{h}</th>" for h in ("level", "model", "calls", "cache hits", "prompt tok", "completion tok", "tokens", "dollars"))
    body = []
    # The store's levels always, then any other level the run called (judge: an LLM-judge metric).
    levels = [*SPEND_LEVELS, *(lv for lv in data.usage["levels"] if lv not in SPEND_LEVELS)]
    for level, usage in [*((lv, data.usage["levels"].get(lv, {})) for lv in levels), ("total", data.usage["total"])]:
        model = models.get(level, "") if level != "total" else ""
        cells = [usage.get(k) for k in ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "tokens")]
        body.append(
            f'<tr class="{"total" if level == "total" else ""}"><th>{_e(level)}</th><td class="model">{_e(model)}</td>'
            + "".join(f'<td class="n">{_num(c)}</td>' for c in cells)
            + f'<td class="n">{_usd(usage.get("cost"))}</td></tr>'
        )
    return f'<table class="usage" aria-label="spend per level"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _winner(data: _Run, chain: Sequence[CandidateRow], prompts: Sequence[PromptView], drawing: str, between: str) -> list[str]:
    """The winner's section, then `between` (plots and lineage), then its prompts' section."""
    if data.winner is None:
        return ['<section id="winner"><h2>The winning graph</h2><p class="empty">No candidate has been scored yet.</p></section>', between]
    steps = []
    for i, cand in enumerate(chain):
        if i:
            extra = f" × {', '.join(cand.parents[1:])}" if len(cand.parents) > 1 else ""
            steps.append(f'<span class="arrow">→ {_e(cand.mutation or cand.origin)}{_e(extra)} →</span>')
        ev = cand.evaluation
        val = _score(ev.val_score) if ev and ev.status == Status.done else (ev.status if ev else Status.pending)
        steps.append(f'<button class="chip o-{_e(cand.origin)}" data-cid="{_e(cand.id)}"><b>{_e(cand.id)}</b> {_e(cand.name)} <span class="muted">{_e(val)}</span></button>')
    if len(chain) == 1 and chain[0].origin == "seed":
        steps.append('<span class="muted">a seed graph: no graph the search derived scored higher</span>')
    seed = chain[0] if chain and chain[0].origin == "seed" else None
    program = (data.winner.evaluation.program if data.winner.evaluation else None) or {}
    program_html = ""
    voters = len(program.get("vote") or [])
    if program.get("steps"):  # a program of several steps: show its answering step
        program = program["steps"][-1]
    if program.get("instruction") or program.get("output_format"):
        demos = len(program.get("demos") or [])
        program_html = (
            f'<h3>Its tuned program <span class="muted">(what the inner loop made with it; {demos} demo{"s" if demos != 1 else ""})</span></h3>'
            f'<pre class="program">{_e(program.get("instruction") or "")}'
            + (f'\n\n<span class="muted">{_e(program["output_format"])}</span>' if program.get("output_format") else "")
            + "</pre>" + _demos_html(program)
            + (f"<p>It answers by a majority vote with {voters} other programs ({voters + 1} calls per answer).</p>" if voters else "")
        )
    compared = f"its seed ancestor {_e(seed.id)} ({_e(seed.name)})" if seed and seed.id != data.winner.id else None
    why = next((e.payload.get("why", "") for e in reversed(data.events) if e.kind == "winner" and isinstance(e.payload, dict)), "")
    why_html = f'<p class="why">Why it won: {_e(why)}</p>' if why else ""
    cost = next((c for c in reversed(typed(data.events, InferenceCost)) if c.candidate == data.winner.id), None)
    if cost:
        test = data.winner.evaluation.test_score if data.winner.evaluation else None
        calls = cost.calls
        why_html += (
            f'<p class="cost">{"Test " + format(test, ".3f") + " at " if test is not None else "Using it costs "}'
            f'{cost.tokens:,.0f} program tokens per answer'
            + (f" ({calls:.3g} model calls each)" if calls > 1.05 else " (one model call each)") + "</p>"
        )
    winner = (
        f'<section id="winner"><h2>{"The winning graph" if data.final else "The best graph so far"}: {_e(data.winner.name)} '
        f'<span class="muted">({_e(data.winner.id)})</span></h2>{why_html}'
        f'<div class="chain" aria-label="how it came about">{"".join(steps)}</div>'
        f'<div class="drawing">{drawing}</div>{program_html}</section>'
    )
    about = "compared with " + compared if compared else "(a seed graph: nothing to compare with)"
    prompts_html = (
        f'<section id="prompts"><h2>Prompts of {_e(data.winner.id)}, node by node <span class="muted">{about}</span></h2>'
        '<p class="muted">Added lines are green, removed lines red and struck through; prompts the graph does not override are '
        f'its operators\' defaults.</p><div class="prompts">{_prompts(prompts, seed.id if compared and seed else None)}</div></section>'
    )
    return [winner, between, prompts_html]


def _prompts(prompts: Sequence[PromptView], seed_id: str | None) -> str:
    if not prompts:
        return '<p class="empty">This graph has no prompts.</p>'
    out, node = [], None
    for view in prompts:
        if view.node != node:
            if node is not None:
                out.append("</div>")
            node = view.node
            tag = f' <span class="tag new">not in {_e(seed_id)}</span>' if seed_id and view.node_is_new else ""
            out.append(f'<div class="node"><h4><code>{_e(view.node)}</code> <span class="muted">{_e(view.op)}</span>{tag}</h4>')
        lines, added, removed = view.diff_html()
        if seed_id is None or view.seed_text is None:
            delta, css = "", ""
        elif view.changed:
            delta, css = f'<span class="tag changed">+{added} −{removed} lines vs {_e(seed_id)}</span>', " changed"
        else:
            delta, css = f'<span class="tag same">same as {_e(seed_id)}</span>', ""
        is_open = " open" if seed_id is None or view.origin == "override" or view.changed or view.seed_text is None else ""
        out.append(
            f'<details class="prompt{css}"{is_open}><summary>prompt <b>{_e(view.name)}</b> '
            f'<span class="tag {view.origin}">{view.origin}</span> {delta}</summary><pre class="diff">{lines}</pre></details>'
        )
    out.append("</div>")
    return "".join(out)


def _progress(drawings: Mapping[str, Any]) -> str:
    return (
        '<section id="progress"><h2>Search progress</h2><div class="charts">'
        f'<figure class="chart-box">{drawings["scores"]}<figcaption>Validation score of every candidate by generation; '
        "the line is the best so far.</figcaption></figure>"
        f'<figure class="chart-box">{drawings["pareto"]}<figcaption>Score against cost: the Pareto front holds the candidates '
        "no other beats on both.</figcaption></figure></div></section>"
    )


def _lineage(svg: str) -> str:
    legend = "".join(
        f'<span class="key"><span class="swatch" style="background:{color}"></span>{_e(ORIGIN_LABELS[origin])}</span>'
        for origin, color in ORIGIN_COLORS.items()
    )
    legend += '<span class="key"><span class="swatch hot"></span>the winner\'s ancestry</span>'
    return (
        '<section id="lineage"><h2>Lineage of every composition tried</h2>'
        '<p class="muted">Columns are generations; each arrow goes from a parent to a child and is labelled with the change '
        f'that made the child. Click a box for its graph and scores.</p><div class="legend">{legend}</div>'
        f'<div class="scroll">{svg}</div></section>'
    )


def _table(rows: Sequence[Mapping[str, Any]], winner: str | None) -> str:
    group = '<tr class="group"><th colspan="7"></th><th colspan="4">tokens</th><th></th></tr>'
    head = group + "<tr>" + "".join(
        f'<th scope="col" data-type="{kind}" title="{_e(tip)}" tabindex="0" aria-sort="none">{_e(name)}</th>' for name, kind, tip in _COLUMNS
    ) + "</tr>"
    body = []
    for r in rows:
        how = r["mutation"] or r["origin"]
        tokens = r["tokens"]
        cells = [
            (r["seq"], ("★ " if r["id"] == winner else "") + r["id"]),
            (r["name"], r["name"]),
            (r["generation"], r["generation"]),
            (how, how),
            (", ".join(r["parents"]), ", ".join(r["parents"]) or DASH),
            (r["val"], _Html(_cell_score(r["val"], r["val_stderr"]) if r["status"] == Status.done else _e(_status_text(r)))),
            (r["test"], _Html(_cell_score(r["test"], r["test_stderr"]))),
            *((tokens[level], _num(tokens[level])) for level in SPEND_LEVELS),
            (r["total_tokens"], _num(r["total_tokens"])),
            (r["dollars"], _usd(r["dollars"])),
        ]
        css = " ".join(c for c in ("winner" if r["id"] == winner else "", f"st-{r['status']}") if c)
        body.append(
            f'<tr class="{_e(css)}" data-cid="{_e(r["id"])}">'
            + "".join(f'<td data-v="{_v(key)}">{text if isinstance(text, _Html) else _e(text)}</td>' for key, text in cells)
            + "</tr>"
        )
    return (
        '<section id="candidates"><h2>Every candidate</h2><p class="muted">Click a column header to sort; click a row for details.</p>'
        f'<div class="scroll"><table id="cand-table" class="sortable"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table></div></section>'
    )


class _Html(str):
    """Markup made here from escaped parts: a table cell takes it as it is."""


def _cell_score(value: float | None, stderr: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.3f}" + (f' <small class="muted">± {stderr:.3f}</small>' if stderr else "")


def _log(data: _Run) -> str:
    rows = []
    for event in data.events:
        payload = json.dumps(event.payload, ensure_ascii=False, sort_keys=True, default=str)
        payload = payload if len(payload) <= 240 else payload[:239] + "…"
        rows.append(f"<tr><td>{_when(event.at)}</td><td>{_e(event.kind)}</td><td><code>{_e(payload)}</code></td></tr>")
    kinds: dict[str, int] = {}
    for event in data.events:
        kinds[event.kind] = kinds.get(event.kind, 0) + 1
    summary = ", ".join(f"{_e(kind)} ×{n}" for kind, n in kinds.items()) or "no events yet"
    return (
        f'<section id="log"><h2>Run log</h2><details><summary>{summary}</summary>'
        f'<table class="log"><thead><tr><th>at</th><th>event</th><th>payload</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
        "</details></section>"
    )


DEMOS_SHOWN = 8
DEMO_CHARS = 400


def _demos_html(step: Mapping[str, Any]) -> str:
    """The answering step's demos (what won, most often), each input and output cut and escaped,
    and its retrieval pool when it retrieves demos per input."""
    demos = list(step.get("demos") or [])
    parts = []
    if demos:
        items = "".join(
            f'<li><pre class="demo"><span class="muted">input</span> {_e(_cut(str(d.get("input", ""))))}\n'
            f'<span class="muted">output</span> {_e(_cut(str(d.get("output", ""))))}</pre></li>'
            for d in demos[:DEMOS_SHOWN]
        )
        more = f'<p class="muted">and {len(demos) - DEMOS_SHOWN} more</p>' if len(demos) > DEMOS_SHOWN else ""
        parts.append(f'<h4>Its demos</h4><ol class="demos">{items}</ol>{more}')
    retrieve = step.get("retrieve")
    if isinstance(retrieve, Mapping):
        pool = retrieve.get("pool") or []
        parts.append(
            f'<p>Plus the {_e(str(retrieve.get("k")))} examples nearest to each input (BM25), from a pool of {len(pool)}.</p>'
        )
    return "".join(parts)


def _cut(text: str) -> str:
    return text if len(text) <= DEMO_CHARS else text[: DEMO_CHARS - 3] + "..."

