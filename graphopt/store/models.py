"""The run store's tables (SQLAlchemy Core `Table`s on one `MetaData`) and the rows its API returns.

Every table but `store_meta` carries `run_id`, so one database (a shared PostgreSQL, say) can hold
many runs; a SQLite file made by `RunStore.open(run_dir)` holds one.

Times are stored as naive UTC `DateTime`s (SQLite keeps no zone); the API hands them back aware.
JSON columns store SQL NULL for `None` (`none_as_null`), so "not set" and "set to null" do not differ.
"""

from __future__ import annotations

__all__ = [
    "SCHEMA_VERSION",
    "metadata",
    "store_meta",
    "run",
    "candidate",
    "candidate_parent",
    "evaluation",
    "event",
    "usage",
    "RunRow",
    "CandidateRow",
    "EvaluationRow",
    "EventRow",
]

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from ..status import Status

SCHEMA_VERSION = 1
"""Bumped on every change to these tables; a store written by a newer graphopt is refused."""


def _json() -> JSON:
    return JSON(none_as_null=True)


metadata = MetaData()

store_meta = Table(
    "store_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

run = Table(
    "run",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("config", _json(), nullable=False),
    Column("summary", _json()),
)

candidate = Table(
    "candidate",
    metadata,
    Column("run_id", String(64), ForeignKey("run.id"), primary_key=True),
    Column("id", String(16), primary_key=True),
    # Insertion order; `id` is "c%04d" of it, but sorting by seq stays right past c9999.
    Column("seq", Integer, nullable=False),
    Column("graph_hash", String(128), nullable=False),
    Column("spec", _json(), nullable=False),
    Column("name", String(256), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("origin", String(32), nullable=False),
    Column("mutation", String(128)),
    Column("created_at", DateTime, nullable=False),
    UniqueConstraint("run_id", "graph_hash", name="uq_candidate_hash"),
    UniqueConstraint("run_id", "seq", name="uq_candidate_seq"),
)

candidate_parent = Table(
    "candidate_parent",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("child_id", String(16), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("parent_id", String(16), nullable=False),
    ForeignKeyConstraint(["run_id", "child_id"], ["candidate.run_id", "candidate.id"]),
    ForeignKeyConstraint(["run_id", "parent_id"], ["candidate.run_id", "candidate.id"]),
)

evaluation = Table(
    "evaluation",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("candidate_id", String(16), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("val_score", Float),
    Column("val_stderr", Float),
    Column("test_score", Float),
    Column("test_stderr", Float),
    Column("program_tokens", Integer, nullable=False, default=0),
    Column("optimizer_tokens", Integer, nullable=False, default=0),
    Column("meta_tokens", Integer, nullable=False, default=0),
    Column("dollars", Float, nullable=False, default=0.0),
    Column("usage", _json()),
    Column("program", _json()),
    Column("history", _json()),
    Column("error", Text),
    Column("started_at", DateTime),
    Column("finished_at", DateTime),
    ForeignKeyConstraint(["run_id", "candidate_id"], ["candidate.run_id", "candidate.id"]),
)

# The score matrix: each candidate's score on each validation example of its evaluation, so two
# graphs can be compared paired (on the same examples) instead of by their means alone.
example_score = Table(
    "example_score",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("candidate_id", String(16), primary_key=True),
    Column("split", String(16), primary_key=True),
    Column("example_id", String(256), primary_key=True),
    Column("score", Float, nullable=False),
    ForeignKeyConstraint(["run_id", "candidate_id"], ["candidate.run_id", "candidate.id"]),
)

event = Table(
    "event",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), ForeignKey("run.id"), nullable=False),
    Column("at", DateTime, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("payload", _json()),
    Index("ix_event_run_kind", "run_id", "kind"),
)

# One row per (run, session, level): the cumulative usage one process recorded. A resumed run adds
# a session, and totals sum over sessions, so spend survives a kill and a resume.
usage = Table(
    "usage",
    metadata,
    Column("run_id", String(64), ForeignKey("run.id"), primary_key=True),
    Column("session", String(32), primary_key=True),
    Column("level", String(32), primary_key=True),
    Column("calls", Integer, nullable=False, default=0),
    Column("cache_hits", Integer, nullable=False, default=0),
    Column("prompt_tokens", Integer, nullable=False, default=0),
    Column("completion_tokens", Integer, nullable=False, default=0),
    Column("tokens", Integer, nullable=False, default=0),
    Column("cost", Float, nullable=False, default=0.0),
    Column("latency", Float, nullable=False, default=0.0),
    Column("errors", Integer, nullable=False, default=0),
    Column("updated_at", DateTime, nullable=False),
)


# ------------------------------------------------------------------- rows the API returns


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


class _Row:
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: datetimes as ISO strings, nested rows as dicts."""
        return _plain(self)


@dataclass(frozen=True)
class RunRow(_Row):
    id: str
    status: str
    config: dict[str, Any]
    summary: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class EvaluationRow(_Row):
    candidate_id: str
    status: Status
    val_score: float | None
    val_stderr: float | None
    test_score: float | None
    test_stderr: float | None
    program_tokens: int
    optimizer_tokens: int
    meta_tokens: int
    dollars: float
    usage: dict[str, Any] | None
    program: dict[str, Any] | None
    history: list[Any] | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class CandidateRow(_Row):
    id: str
    graph_hash: str
    spec: dict[str, Any]
    name: str
    generation: int
    origin: str
    mutation: str | None
    created_at: datetime
    parents: tuple[str, ...]
    evaluation: EvaluationRow | None


@dataclass(frozen=True)
class EventRow(_Row):
    id: int
    at: datetime
    kind: str
    payload: Any
