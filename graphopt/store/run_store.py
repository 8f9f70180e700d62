"""The run store: every candidate graph, its evaluation, cost, lineage and the run's events.

The store is the source of truth of a search: each write commits at once, so a killed run loses at
most the evaluation in flight, and `--resume` never redoes a finished one. SQLite files use
write-ahead logging, so the HTML report can read while the search writes.

Example:
    >>> import tempfile
    >>> store = RunStore.open(tempfile.mkdtemp())
    >>> store.ensure_run({"task": "word_sorting", "models": {"program": "local"}})
    'run'
    >>> row = store.add_candidate({"name": "g", "nodes": [], "edges": []}, "h1")
    >>> row.id
    'c0001'
    >>> store.finish_evaluation("c0001", val_score=0.5).status
    'done'
    >>> store.best().id
    'c0001'
    >>> store.close()
"""

from __future__ import annotations

__all__ = [
    "RunStore",
    "RunRow",
    "CandidateRow",
    "EvaluationRow",
    "EventRow",
    "ORIGINS",
    "RUN_STATUSES",
    "LEVELS",
    "STORE_FILENAME",
    "strip_secrets",
]

import dataclasses
import threading
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, and_, create_engine, func, insert, make_url, or_, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from ..errors import ConfigError, RunError, did_you_mean
from . import models as t
from .models import CandidateRow, EvaluationRow, EventRow, RunRow

STORE_FILENAME = "run.sqlite"
ORIGINS = ("seed", "prompt_opt", "mutation", "crossover", "llm")
RUN_STATUSES = ("running", "finished", "interrupted", "failed")
LEVELS = ("program", "optimizer", "meta")
# Config keys that must match for a run to be resumed; other settings (budgets...) may change.
COMPATIBLE_KEYS = ("task", "models")
_SECRET_WORDS = ("key", "token", "secret", "password")
_USAGE_FIELDS = ("calls", "cache_hits", "prompt_tokens", "completion_tokens", "tokens", "cost", "latency", "errors")


# -------------------------------------------------------------------------------------- helpers


def strip_secrets(value: Any) -> Any:
    """Returns `value` without the entries whose key names a secret ("key", "token", "secret", ...).

    Dicts and lists are walked recursively. Numbers and booleans are kept (a `max_tokens` budget
    is not a credential); anything else under such a key, strings and nested dicts included, is dropped.
    """
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            secret_name = any(word in str(k).lower() for word in _SECRET_WORDS)
            if secret_name and not (isinstance(v, (int, float)) or v is None):
                continue
            out[k] = strip_secrets(v)
        return out
    if isinstance(value, (list, tuple)):
        return [strip_secrets(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    """Turns pydantic models, ledgers and tuples into plain JSON data."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=timezone.utc)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer, nor it them
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _describe(key: str, value: Any) -> str:
    if isinstance(value, Mapping):
        value = ", ".join(f"{k}={v}" for k, v in value.items()) or "(none)"
    return f"{key} {value}"


def _usage_values(usage: Any) -> dict[str, Any]:
    data = _jsonable(usage) or {}
    values = {name: data.get(name, 0) or 0 for name in _USAGE_FIELDS}
    if "tokens" not in data:
        values["tokens"] = values["prompt_tokens"] + values["completion_tokens"]
    return values


# ---------------------------------------------------------------------------------------- store


class RunStore:
    """A search run's store on any SQLAlchemy URL; thread-safe, every write committed at once.

    Args:
        url: a SQLAlchemy URL, e.g. "sqlite:///out/run.sqlite" or "postgresql+psycopg://...".
        run_id: which run of the database this store reads and writes.
        location: how errors name the store; defaults to the URL without its password.

    Raises:
        ConfigError: the store was written by a newer graphopt (a higher schema version).
    """

    def __init__(self, url: str | URL, *, run_id: str = "run", location: str | None = None):
        self.url = make_url(url)
        self.run_id = run_id
        self.location = location or self.url.render_as_string(hide_password=True)
        self.resumed = False
        self._session: str | None = None
        self._lock = threading.RLock()
        kwargs: dict[str, Any] = {}
        if self.url.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False}
            if self.url.database in (None, "", ":memory:"):
                kwargs["poolclass"] = StaticPool  # one connection, or each would see its own empty db
        self._engine = create_engine(self.url, **kwargs)
        if self.url.get_backend_name() == "sqlite":
            sa_event.listen(self._engine, "connect", _sqlite_pragmas)
        self._init_schema()

    @classmethod
    def open(cls, run_dir: str | Path, *, run_id: str = "run", create: bool = True) -> RunStore:
        """Opens the SQLite store `run_dir/run.sqlite`, creating the directory when `create`.

        Raises:
            ConfigError: `create` is false and there is no store in `run_dir`.
        """
        path = Path(run_dir)
        db = path / STORE_FILENAME
        if not create and not db.is_file():
            raise ConfigError(f"no run store in {path} (expected {db})")
        path.mkdir(parents=True, exist_ok=True)
        return cls(URL.create("sqlite", database=str(db.resolve())), run_id=run_id, location=str(path))

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({self.location!r}, run_id={self.run_id!r})"

    def close(self) -> None:
        """Releases the database connections. Everything was committed already."""
        self._engine.dispose()

    def _init_schema(self) -> None:
        with self._lock, self._engine.begin() as conn:
            t.metadata.create_all(conn)
            found = conn.execute(select(t.store_meta.c.value).where(t.store_meta.c.key == "schema_version")).scalar()
            if found is None:
                conn.execute(insert(t.store_meta).values(key="schema_version", value=str(t.SCHEMA_VERSION)))
            elif int(found) > t.SCHEMA_VERSION:
                raise ConfigError(
                    f"run store {self.location} has schema version {found}; this graphopt reads up to "
                    f"{t.SCHEMA_VERSION}, so upgrade graphopt or use another --out"
                )

    @property
    def schema_version(self) -> int:
        """The schema version the store was written with."""
        query = select(t.store_meta.c.value).where(t.store_meta.c.key == "schema_version")
        with self._lock, self._engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    # ----------------------------------------------------------------------------------- run

    def ensure_run(self, config: Mapping[str, Any]) -> str:
        """Starts the run, or resumes it when the store already has it.

        The config is stored without secrets (see `strip_secrets`). On resume, evaluations a killed
        process left "running" go back to "pending", and a "resume" event is added.

        Args:
            config: the run's settings: task, budgets, models per level, seeds.

        Returns:
            The run id.

        Raises:
            ConfigError: the stored run was made for another task or other models.
        """
        clean = strip_secrets(_jsonable(config))
        now = _now()
        with self._lock, self._engine.begin() as conn:
            found = conn.execute(select(t.run).where(t.run.c.id == self.run_id)).mappings().first()
            if found is None:
                conn.execute(
                    insert(t.run).values(id=self.run_id, created_at=now, updated_at=now, status="running", config=clean)
                )
                self.resumed = False
            else:
                for key in COMPATIBLE_KEYS:
                    if found["config"].get(key) != clean.get(key):
                        raise ConfigError(
                            f"run dir {self.location} was made for {_describe(key, found['config'].get(key))}; "
                            "use another --out or the same settings"
                        )
                again = {"status": "running", "config": clean, "updated_at": now}
                conn.execute(update(t.run).where(t.run.c.id == self.run_id).values(**again))
                reset = conn.execute(
                    update(t.evaluation)
                    .where(t.evaluation.c.run_id == self.run_id, t.evaluation.c.status == "running")
                    .values(status="pending", started_at=None)
                ).rowcount
                payload = {"previous_status": found["status"], "reset_evaluations": reset}
                conn.execute(insert(t.event).values(run_id=self.run_id, at=now, kind="resume", payload=payload))
                self.resumed = True
            self._session = uuid.uuid4().hex[:12]
        return self.run_id

    def run(self) -> RunRow | None:
        """The run's row, or None before `ensure_run`."""
        with self._lock, self._engine.connect() as conn:
            row = conn.execute(select(t.run).where(t.run.c.id == self.run_id)).mappings().first()
        if row is None:
            return None
        return RunRow(
            id=row["id"],
            status=row["status"],
            config=row["config"],
            summary=row["summary"],
            created_at=_aware(row["created_at"]),
            updated_at=_aware(row["updated_at"]),
        )

    def set_status(self, status: str) -> None:
        """Sets the run's status: one of `RUN_STATUSES`."""
        if status not in RUN_STATUSES:
            raise RunError(f"unknown run status {status!r}{did_you_mean(status, RUN_STATUSES)}")
        self._update_run(status=status)

    def set_summary(self, summary: Mapping[str, Any]) -> None:
        """Stores the run's summary (winner, scores, spend), replacing any earlier one."""
        self._update_run(summary=_jsonable(summary))

    def _update_run(self, **values: Any) -> None:
        self._require_run()
        with self._lock, self._engine.begin() as conn:
            conn.execute(update(t.run).where(t.run.c.id == self.run_id).values(updated_at=_now(), **values))

    def _require_run(self) -> None:
        if self._session is None:
            raise RunError("call ensure_run(config) before writing to the run store")

    # ---------------------------------------------------------------------------- candidates

    def add_candidate(
        self,
        spec: Mapping[str, Any] | Any,
        graph_hash: str,
        *,
        parents: Iterable[str] = (),
        origin: str = "seed",
        mutation: str | None = None,
        generation: int = 0,
        name: str | None = None,
    ) -> CandidateRow:
        """Adds a candidate graph with a pending evaluation; a known hash returns the existing row.

        Args:
            spec: the graph spec as a dict (or a `GraphSpec`).
            graph_hash: the spec's canonical hash; unique within the run.
            parents: ids (or hashes) of the candidates it was made from, in order.
            origin: one of `ORIGINS`.
            mutation: the mutation or meta step that made it.
            generation: the search generation it belongs to.
            name: defaults to the spec's name.

        Raises:
            RunError: unknown origin or parent.
        """
        self._require_run()
        if origin not in ORIGINS:
            raise RunError(f"unknown candidate origin {origin!r}{did_you_mean(origin, ORIGINS)}")
        spec_dict = _jsonable(spec)
        if not isinstance(spec_dict, Mapping):
            raise RunError(f"candidate spec must be a dict or a GraphSpec, got {type(spec).__name__}")
        with self._lock:
            existing = self.find_by_hash(graph_hash)
            if existing is not None:
                return existing
            try:
                with self._engine.begin() as conn:
                    parent_ids = [self._resolve(conn, p, strict=True) for p in parents]
                    last = select(func.max(t.candidate.c.seq)).where(t.candidate.c.run_id == self.run_id)
                    seq = (conn.execute(last).scalar() or 0) + 1
                    cid = f"c{seq:04d}"
                    conn.execute(
                        insert(t.candidate).values(
                            run_id=self.run_id,
                            id=cid,
                            seq=seq,
                            graph_hash=graph_hash,
                            spec=spec_dict,
                            name=name or str(spec_dict.get("name", cid)),
                            generation=generation,
                            origin=origin,
                            mutation=mutation,
                            created_at=_now(),
                        )
                    )
                    for position, parent_id in enumerate(parent_ids):
                        conn.execute(
                            insert(t.candidate_parent).values(
                                run_id=self.run_id, child_id=cid, parent_id=parent_id, position=position
                            )
                        )
                    conn.execute(insert(t.evaluation).values(run_id=self.run_id, candidate_id=cid, status="pending"))
            except IntegrityError:
                existing = self.find_by_hash(graph_hash)  # another process added it first
                if existing is None:
                    raise
                return existing
            return self.candidate(cid)  # type: ignore[return-value]

    def candidate(self, ref: str) -> CandidateRow | None:
        """The candidate with this id or graph hash, or None."""
        with self._lock, self._engine.connect() as conn:
            rows = self._candidates(conn, or_(t.candidate.c.id == ref, t.candidate.c.graph_hash == ref))
        return rows[0] if rows else None

    def find_by_hash(self, graph_hash: str) -> CandidateRow | None:
        """The candidate with this graph hash, or None."""
        with self._lock, self._engine.connect() as conn:
            rows = self._candidates(conn, t.candidate.c.graph_hash == graph_hash)
        return rows[0] if rows else None

    def candidates(self) -> list[CandidateRow]:
        """Every candidate with its evaluation and parents, in insertion order (c0001, c0002, ...)."""
        with self._lock, self._engine.connect() as conn:
            return self._candidates(conn)

    def lineage(self) -> list[tuple[str, str]]:
        """Every (parent_id, child_id) edge, by child then parent position."""
        p, c = t.candidate_parent, t.candidate
        query = (
            select(p.c.parent_id, p.c.child_id)
            .join(c, and_(c.c.run_id == p.c.run_id, c.c.id == p.c.child_id))
            .where(p.c.run_id == self.run_id)
            .order_by(c.c.seq, p.c.position)
        )
        with self._lock, self._engine.connect() as conn:
            return [(row.parent_id, row.child_id) for row in conn.execute(query)]

    def _candidates(self, conn: Connection, *where: Any) -> list[CandidateRow]:
        c, p, e = t.candidate, t.candidate_parent, t.evaluation
        rows = conn.execute(select(c).where(c.c.run_id == self.run_id, *where).order_by(c.c.seq)).mappings().all()
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        only = (p.c.child_id.in_(ids),) if where else ()
        parents: dict[str, list[str]] = {}
        for row in conn.execute(select(p).where(p.c.run_id == self.run_id, *only).order_by(p.c.position)):
            parents.setdefault(row.child_id, []).append(row.parent_id)
        only = (e.c.candidate_id.in_(ids),) if where else ()
        evals = {
            row["candidate_id"]: self._evaluation_row(row)
            for row in conn.execute(select(e).where(e.c.run_id == self.run_id, *only)).mappings()
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
                created_at=_aware(row["created_at"]),
                parents=tuple(parents.get(row["id"], ())),
                evaluation=evals.get(row["id"]),
            )
            for row in rows
        ]

    def _resolve(self, conn: Connection, ref: str, *, strict: bool) -> str | None:
        c = t.candidate
        cid = conn.execute(
            select(c.c.id).where(c.c.run_id == self.run_id, or_(c.c.id == ref, c.c.graph_hash == ref))
        ).scalar()
        if cid is None and strict:
            raise RunError(f"no candidate {ref!r} in run {self.run_id!r} of {self.location}")
        return cid

    # --------------------------------------------------------------------------- evaluations

    def start_evaluation(self, ref: str) -> None:
        """Marks a candidate's evaluation as running (by candidate id or graph hash)."""
        self._set_evaluation(ref, status="running", started_at=_now(), finished_at=None, error=None)

    def finish_evaluation(
        self,
        ref: str,
        *,
        val_score: float,
        val_stderr: float | None = None,
        program: Mapping[str, Any] | Any = None,
        history: list[Any] | None = None,
        usage: Mapping[str, Any] | Any = None,
        test_score: float | None = None,
        test_stderr: float | None = None,
        program_tokens: int | None = None,
        optimizer_tokens: int | None = None,
        meta_tokens: int | None = None,
        dollars: float | None = None,
    ) -> EvaluationRow:
        """Records a finished evaluation.

        Args:
            ref: candidate id or graph hash.
            val_score: validation score of the tuned program.
            val_stderr: its standard error.
            program: the tuned program (dict or `Program`).
            history: the inner loop's steps (JSON data).
            usage: the evaluation's usage, a `Ledger` or its `to_dict()`.
            test_score: test score, only for reported candidates.
            test_stderr: its standard error.
            program_tokens: defaults to the usage's "program" level tokens; likewise the other levels.
            optimizer_tokens: see `program_tokens`.
            meta_tokens: see `program_tokens`.
            dollars: defaults to the usage's total cost.

        Returns:
            The stored evaluation.
        """
        usage_d = _jsonable(usage)
        levels = (usage_d or {}).get("levels", {})

        def tokens(level: str, given: int | None) -> int:
            return given if given is not None else int(levels.get(level, {}).get("tokens", 0))

        if dollars is None:
            dollars = float((usage_d or {}).get("total", {}).get("cost", 0.0))
        now = _now()
        return self._set_evaluation(
            ref,
            status="done",
            val_score=val_score,
            val_stderr=val_stderr,
            test_score=test_score,
            test_stderr=test_stderr,
            program_tokens=tokens("program", program_tokens),
            optimizer_tokens=tokens("optimizer", optimizer_tokens),
            meta_tokens=tokens("meta", meta_tokens),
            dollars=dollars,
            usage=usage_d,
            program=_jsonable(program),
            history=_jsonable(history),
            error=None,
            started_at=func.coalesce(t.evaluation.c.started_at, now),
            finished_at=now,
        )

    def fail_evaluation(self, ref: str, error: str | BaseException) -> None:
        """Marks an evaluation as failed; a failed one is not done, so a resumed run retries it."""
        if isinstance(error, BaseException):
            error = f"{type(error).__name__}: {error}"
        self._set_evaluation(ref, status="failed", error=error, finished_at=_now())

    def set_test_score(self, ref: str, score: float, stderr: float | None = None) -> None:
        """Stores the test score of a reported candidate."""
        self._set_evaluation(ref, test_score=score, test_stderr=stderr)

    def evaluation(self, ref: str) -> EvaluationRow | None:
        """A candidate's evaluation in any status, or None for an unknown candidate."""
        with self._lock, self._engine.connect() as conn:
            cid = self._resolve(conn, ref, strict=False)
            if cid is None:
                return None
            e = t.evaluation
            row = conn.execute(select(e).where(e.c.run_id == self.run_id, e.c.candidate_id == cid)).mappings().first()
        return self._evaluation_row(row) if row is not None else None

    def done_evaluation(self, ref: str) -> EvaluationRow | None:
        """The finished evaluation of a candidate (by id or graph hash), or None if it is not done."""
        found = self.evaluation(ref)
        return found if found is not None and found.status == "done" else None

    def best(self, metric: str = "val_score") -> CandidateRow | None:
        """The done candidate with the highest `metric` ("val_score" or "test_score"); ties go to the earliest."""
        if metric not in ("val_score", "test_score"):
            raise RunError(f"unknown metric {metric!r}; use 'val_score' or 'test_score'")
        c, e = t.candidate, t.evaluation
        score = e.c[metric]
        query = (
            select(c.c.id)
            .join(e, and_(e.c.run_id == c.c.run_id, e.c.candidate_id == c.c.id))
            .where(c.c.run_id == self.run_id, e.c.status == "done", score.is_not(None))
            .order_by(score.desc(), c.c.seq)
            .limit(1)
        )
        with self._lock, self._engine.connect() as conn:
            cid = conn.execute(query).scalar()
        return self.candidate(cid) if cid is not None else None

    def _set_evaluation(self, ref: str, **values: Any) -> EvaluationRow:
        self._require_run()
        e = t.evaluation
        with self._lock:
            with self._engine.begin() as conn:
                cid = self._resolve(conn, ref, strict=True)
                conn.execute(update(e).where(e.c.run_id == self.run_id, e.c.candidate_id == cid).values(**values))
            return self.evaluation(cid)  # type: ignore[arg-type,return-value]

    @staticmethod
    def _evaluation_row(row: Mapping[str, Any]) -> EvaluationRow:
        fields = {f.name: row[f.name] for f in dataclasses.fields(EvaluationRow)}
        fields["started_at"] = _aware(fields["started_at"])
        fields["finished_at"] = _aware(fields["finished_at"])
        return EvaluationRow(**fields)

    # -------------------------------------------------------------------------------- events

    def add_event(self, kind: str, payload: Any = None) -> EventRow:
        """Appends an event ("generation", "rejected_proposal", "stop", "note", ...) with JSON payload."""
        self._require_run()
        at = _now()
        payload = _jsonable(payload)
        with self._lock, self._engine.begin() as conn:
            result = conn.execute(insert(t.event).values(run_id=self.run_id, at=at, kind=kind, payload=payload))
            event_id = result.inserted_primary_key[0]
        return EventRow(id=event_id, at=_aware(at), kind=kind, payload=payload)

    def events(self, kind: str | None = None, *, after: int | None = None) -> list[EventRow]:
        """The run's events in order, optionally of one kind or after a given event id (for polling)."""
        ev = t.event
        query = select(ev).where(ev.c.run_id == self.run_id).order_by(ev.c.id)
        if kind is not None:
            query = query.where(ev.c.kind == kind)
        if after is not None:
            query = query.where(ev.c.id > after)
        with self._lock, self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [EventRow(id=r["id"], at=_aware(r["at"]), kind=r["kind"], payload=r["payload"]) for r in rows]

    # --------------------------------------------------------------------------------- usage

    def record_usage(self, level: str, usage: Mapping[str, Any] | Any) -> None:
        """Records this session's cumulative usage of one level, replacing its earlier record.

        Call it as often as you like with the running total of the process (e.g.
        `ledger.level("meta")`); each `ensure_run` starts a new session, and `usage_totals` adds the
        sessions up, so spend before a kill is kept after a resume.
        """
        self._require_run()
        values = _usage_values(usage)
        u = t.usage
        key = and_(u.c.run_id == self.run_id, u.c.session == self._session, u.c.level == level)
        values["updated_at"] = _now()
        with self._lock, self._engine.begin() as conn:
            if conn.execute(update(u).where(key).values(**values)).rowcount == 0:
                conn.execute(insert(u).values(run_id=self.run_id, session=self._session, level=level, **values))

    def record_ledger(self, ledger: Mapping[str, Any] | Any) -> None:
        """`record_usage` for every level of a `Ledger` (or its `to_dict()`)."""
        for level, usage in (_jsonable(ledger).get("levels") or {}).items():
            self.record_usage(level, usage)

    def usage_totals(self) -> dict[str, Any]:
        """The run's usage over all sessions: {"levels": {level: usage}, "total": usage}.

        Usage dicts have the `Usage.to_dict()` keys (calls, tokens, cost in dollars, ...); the levels
        program, optimizer and meta are always present.
        """
        u = t.usage
        sums = [func.coalesce(func.sum(u.c[name]), 0).label(name) for name in _USAGE_FIELDS]
        query = select(u.c.level, *sums).where(u.c.run_id == self.run_id).group_by(u.c.level)
        with self._lock, self._engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        levels = {level: dict.fromkeys(_USAGE_FIELDS, 0) for level in LEVELS}
        for row in rows:
            levels[row["level"]] = {name: row[name] for name in _USAGE_FIELDS}
        total = {name: sum(level[name] for level in levels.values()) for name in _USAGE_FIELDS}
        for usage in (*levels.values(), total):
            usage["cost"] = float(usage["cost"])
            usage["latency"] = float(usage["latency"])
        return {"levels": levels, "total": total}
