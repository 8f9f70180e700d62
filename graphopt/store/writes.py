"""The write side of the run store: the INSERTs and UPDATEs of one run, each in the caller's transaction.

`RunStore` holds the lock, checks its arguments, turns values into JSON and opens the
transaction; these functions only say what changes in which table.
"""

from __future__ import annotations

__all__ = [
    "create_run",
    "update_run",
    "resume_run", 
    "insert_candidate",
    "update_evaluation",
    "insert_event",
    "upsert_usage",
]

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, func, insert, select, update

from ..status import Status
from . import models as t


def create_run(conn: Connection, run_id: str, config: Mapping[str, Any], at: datetime) -> None:
    """Adds the run, "running" with `config`."""
    conn.execute(insert(t.run).values(id=run_id, created_at=at, updated_at=at, status="running", config=config))


def update_run(conn: Connection, run_id: str, values: Mapping[str, Any]) -> None:
    """Sets columns of the run's row."""
    conn.execute(update(t.run).where(t.run.c.id == run_id).values(**values))


def resume_run(conn: Connection, run_id: str, config: Mapping[str, Any], at: datetime, previous_status: str) -> None:
    """Sets the run "running" again with `config`, puts evaluations a killed process left running
    back to "pending", and records a "resume" event saying how many."""
    again = {"status": "running", "config": config, "updated_at": at}
    conn.execute(update(t.run).where(t.run.c.id == run_id).values(**again))
    reset = conn.execute(
        update(t.evaluation)
        .where(t.evaluation.c.run_id == run_id, t.evaluation.c.status == Status.running.value)
        .values(status=Status.pending.value, started_at=None)
    ).rowcount
    payload = {"previous_status": previous_status, "reset_evaluations": reset}
    conn.execute(insert(t.event).values(run_id=run_id, at=at, kind="resume", payload=payload))


def insert_candidate(
    conn: Connection,
    run_id: str,
    *,
    graph_hash: str,
    spec: Mapping[str, Any],
    name: str | None,
    generation: int,
    origin: str,
    mutation: str | None,
    parent_ids: Sequence[str],
    at: datetime,
) -> str:
    """Adds a candidate with the next id (c0001, c0002, ...), its parent links and a pending evaluation.

    Returns:
        The new candidate's id.
    """
    last = select(func.max(t.candidate.c.seq)).where(t.candidate.c.run_id == run_id)
    seq = (conn.execute(last).scalar() or 0) + 1
    cid = f"c{seq:04d}"
    conn.execute(
        insert(t.candidate).values(
            run_id=run_id,
            id=cid,
            seq=seq,
            graph_hash=graph_hash,
            spec=spec,
            name=name or str(spec.get("name", cid)),
            generation=generation,
            origin=origin,
            mutation=mutation,
            created_at=at,
        )
    )
    for position, parent_id in enumerate(parent_ids):
        conn.execute(
            insert(t.candidate_parent).values(run_id=run_id, child_id=cid, parent_id=parent_id, position=position)
        )
    conn.execute(insert(t.evaluation).values(run_id=run_id, candidate_id=cid, status=Status.pending.value))
    return cid


def update_evaluation(conn: Connection, run_id: str, candidate_id: str, values: Mapping[str, Any]) -> None:
    """Sets columns of one candidate's evaluation."""
    e = t.evaluation
    conn.execute(update(e).where(e.c.run_id == run_id, e.c.candidate_id == candidate_id).values(**values))


def insert_event(conn: Connection, run_id: str, at: datetime, kind: str, payload: Any) -> int:
    """Appends an event; returns its id."""
    result = conn.execute(insert(t.event).values(run_id=run_id, at=at, kind=kind, payload=payload))
    return result.inserted_primary_key[0]


def upsert_usage(conn: Connection, run_id: str, session: str, level: str, values: Mapping[str, Any]) -> None:
    """Replaces one session's usage record of one level (adding it the first time)."""
    u = t.usage
    key = and_(u.c.run_id == run_id, u.c.session == session, u.c.level == level)
    if conn.execute(update(u).where(key).values(**values)).rowcount == 0:
        conn.execute(insert(u).values(run_id=run_id, session=session, level=level, **values))


def replace_example_scores(
    conn: Connection, run_id: str, candidate_id: str, split: str, scores: Mapping[str, float]
) -> None:
    """Sets one candidate's per-example scores on a split (replacing earlier ones)."""
    x = t.example_score
    conn.execute(delete(x).where(x.c.run_id == run_id, x.c.candidate_id == candidate_id, x.c.split == split))
    rows = [
        {"run_id": run_id, "candidate_id": candidate_id, "split": split, "example_id": str(k), "score": float(v)}
        for k, v in scores.items()
    ]
    if rows:
        conn.execute(insert(x), rows)
