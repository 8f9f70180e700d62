"""The read side of the run store: the SELECTs that turn one run's tables into row objects.

Each function takes an open connection and the run id; `RunStore` holds the lock and the engine,
checks its arguments and raises the errors.
"""

from __future__ import annotations

__all__ = [
    "run_row",
    "candidate_rows",
    "candidate_id",
    "id_or_hash",
    "evaluation_of",
    "evaluation_row",
    "lineage",
    "best_candidate_id",
    "event_rows",
    "usage_totals",
]

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, func, or_, select

from ..status import Status
from . import models as t
from .models import CandidateRow, EvaluationRow, EventRow, RunRow
from .serialize import USAGE_FIELDS, aware


def run_row(conn: Connection, run_id: str) -> RunRow | None:
    """The run's row, or None when the run was not started."""
    row = conn.execute(select(t.run).where(t.run.c.id == run_id)).mappings().first()
    if row is None:
        return None
    return RunRow(
        id=row["id"],
        status=row["status"],
        config=row["config"],
        summary=row["summary"],
        created_at=aware(row["created_at"]),
        updated_at=aware(row["updated_at"]),
    )


def candidate_rows(conn: Connection, run_id: str, *where: Any) -> list[CandidateRow]:
    """The run's candidates matching `where` (all without it) with evaluation and parents, in order."""
    c, p, e = t.candidate, t.candidate_parent, t.evaluation
    rows = conn.execute(select(c).where(c.c.run_id == run_id, *where).order_by(c.c.seq)).mappings().all()
    if not rows:
        return []
    ids = [row["id"] for row in rows]
    only = (p.c.child_id.in_(ids),) if where else ()
    parents: dict[str, list[str]] = {}
    for row in conn.execute(select(p).where(p.c.run_id == run_id, *only).order_by(p.c.position)):
        parents.setdefault(row.child_id, []).append(row.parent_id)
    only = (e.c.candidate_id.in_(ids),) if where else ()
    evals = {
        row["candidate_id"]: evaluation_row(row)
        for row in conn.execute(select(e).where(e.c.run_id == run_id, *only)).mappings()
    }
    return [
        CandidateRow(
            id=row["id"],
            graph_hash=row["graph_hash"],
            spec=row["spec"],
            name=row["name"],
            generation=row["generation"],
            origin=row["origin"],
            mutation=row["mutation"],
            created_at=aware(row["created_at"]),
            parents=tuple(parents.get(row["id"], ())),
            evaluation=evals.get(row["id"]),
        )
        for row in rows
    ]


def id_or_hash(ref: str) -> ColumnElement[bool]:
    """The condition on candidates "id or graph hash is `ref`"."""
    return or_(t.candidate.c.id == ref, t.candidate.c.graph_hash == ref)


def candidate_id(conn: Connection, run_id: str, ref: str) -> str | None:
    """The id of the candidate whose id or graph hash is `ref`, or None."""
    c = t.candidate
    return conn.execute(select(c.c.id).where(c.c.run_id == run_id, id_or_hash(ref))).scalar()


def evaluation_of(conn: Connection, run_id: str, candidate_id: str) -> EvaluationRow | None:
    """The evaluation of the candidate with this id, in any status, or None."""
    e = t.evaluation
    row = conn.execute(select(e).where(e.c.run_id == run_id, e.c.candidate_id == candidate_id)).mappings().first()
    return evaluation_row(row) if row is not None else None


def evaluation_row(row: Mapping[str, Any]) -> EvaluationRow:
    """An evaluation table row as an `EvaluationRow`, its times timezone-aware."""
    fields = {f.name: row[f.name] for f in dataclasses.fields(EvaluationRow)}
    fields["status"] = Status(fields["status"])
    fields["started_at"] = aware(fields["started_at"])
    fields["finished_at"] = aware(fields["finished_at"])
    return EvaluationRow(**fields)


def lineage(conn: Connection, run_id: str) -> list[tuple[str, str]]:
    """Every (parent_id, child_id) edge, by child then parent position."""
    p, c = t.candidate_parent, t.candidate
    query = (
        select(p.c.parent_id, p.c.child_id)
        .join(c, and_(c.c.run_id == p.c.run_id, c.c.id == p.c.child_id))
        .where(p.c.run_id == run_id)
        .order_by(c.c.seq, p.c.position)
    )
    return [(row.parent_id, row.child_id) for row in conn.execute(query)]


def best_candidate_id(conn: Connection, run_id: str, metric: str) -> str | None:
    """The id of the done candidate with the highest `metric` column; ties go to the earliest."""
    c, e = t.candidate, t.evaluation
    score = e.c[metric]
    query = (
        select(c.c.id)
        .join(e, and_(e.c.run_id == c.c.run_id, e.c.candidate_id == c.c.id))
        .where(c.c.run_id == run_id, e.c.status == Status.done.value, score.is_not(None))
        .order_by(score.desc(), c.c.seq)
        .limit(1)
    )
    return conn.execute(query).scalar()


def event_rows(conn: Connection, run_id: str, kind: str | None, after: int | None) -> list[EventRow]:
    """The run's events in order, optionally of one kind or after a given event id."""
    ev = t.event
    query = select(ev).where(ev.c.run_id == run_id).order_by(ev.c.id)
    if kind is not None:
        query = query.where(ev.c.kind == kind)
    if after is not None:
        query = query.where(ev.c.id > after)
    rows = conn.execute(query).mappings().all()
    return [EventRow(id=r["id"], at=aware(r["at"]), kind=r["kind"], payload=r["payload"]) for r in rows]


def usage_totals(conn: Connection, run_id: str, levels: Sequence[str]) -> dict[str, Any]:
    """Usage summed over sessions: {"levels": {level: usage}, "total": usage}, every one of `levels` present."""
    u = t.usage
    sums = [func.coalesce(func.sum(u.c[name]), 0).label(name) for name in USAGE_FIELDS]
    query = select(u.c.level, *sums).where(u.c.run_id == run_id).group_by(u.c.level)
    rows = conn.execute(query).mappings().all()
    by_level = {level: dict.fromkeys(USAGE_FIELDS, 0) for level in levels}
    for row in rows:
        by_level[row["level"]] = {name: row[name] for name in USAGE_FIELDS}
    total = {name: sum(level[name] for level in by_level.values()) for name in USAGE_FIELDS}
    for usage in (*by_level.values(), total):
        usage["cost"] = float(usage["cost"])
        usage["latency"] = float(usage["latency"])
    return {"levels": by_level, "total": total}


def example_scores(conn: Connection, run_id: str, split: str, candidate_id: str | None = None) -> dict[str, dict[str, float]]:
    """{candidate id: {example id: score}} on a split (one candidate's, or every one's).

    A store written before the score matrix existed (opened read-only) has no such table: {}.
    """
    if not conn.dialect.has_table(conn, t.example_score.name):
        return {}
    x = t.example_score
    where = [x.c.run_id == run_id, x.c.split == split]
    if candidate_id is not None:
        where.append(x.c.candidate_id == candidate_id)
    out: dict[str, dict[str, float]] = {}
    for row in conn.execute(select(x.c.candidate_id, x.c.example_id, x.c.score).where(*where)):
        out.setdefault(row.candidate_id, {})[row.example_id] = row.score
    return out
