"""The run store: every candidate graph, its evaluation, cost, lineage and the run's events.

The store is the source of truth of a search: each write commits at once, so a killed run loses at
most the evaluation in flight, and `--resume` never redoes a finished one. SQLite files use
write-ahead logging, so the HTML report can read while the search writes. `RunStore` is the API;
the SQL it runs is in `queries` (reads) and `writes`, the database setup in `engine`.

Example:
    >>> import tempfile
    >>> store = RunStore.open(tempfile.mkdtemp())
    >>> store.ensure_run({"task": "word_sorting", "models": {"program": "local"}})
    'run'
    >>> row = store.add_candidate({"name": "g", "nodes": [], "edges": []}, "h1")
    >>> row.id
    'c0001'
    >>> store.finish_evaluation("c0001", val_score=0.5).status.value
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
    "SPEND_LEVELS",
    "STORE_FILENAME",
    "strip_secrets",
]

import threading
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, func, make_url
from sqlalchemy.exc import IntegrityError

from ..errors import ConfigError, RunError, did_you_mean
from . import models as t
from . import queries as q
from . import writes as w
from .engine import open_store, stored_schema_version
from .files import open_run_dir
from .lock import RunDirLock
from .models import CandidateRow, EvaluationRow, EventRow, RunRow
from ..status import Status
from .serialize import aware, jsonable, now, spend_values, strip_secrets, usage_values

STORE_FILENAME = "run.sqlite"
ORIGINS = ("seed", "prompt_opt", "mutation", "crossover", "llm")
RUN_STATUSES = ("running", "finished", "interrupted", "failed")
# The levels with a token column of their own in the evaluation table; every level's spend,
# the judge's too, is in its usage (the LM's LEVELS name them all).
SPEND_LEVELS = ("program", "optimizer", "meta")
# Config keys that must match for a run to be resumed; other settings (budgets...) may change.
COMPATIBLE_KEYS = ("task", "models")


# What each part of a run's identity (see graphopt.search.engine.run_identity) stands for.
_IDENTITY_PARTS = {
    "data": "other task data (another --source, --difficulty, --seed or data file)",
    "seed": "another --seed",
    "loops": "other loop sizes",
    "seed_graphs": "other seed graphs",
    "levels": "other model settings",
}


# Parts keyed by model level: a level the stored run did not record (a run made before the judge
# level existed, or that never called it) is not compared.
_PER_LEVEL = ("models", "levels")


def _as_recorded(key: str, stored: Any, given: Any) -> Any:
    """`given` as the stored run could have recorded it: per-level parts keep only the stored levels."""
    if key in _PER_LEVEL and isinstance(stored, Mapping) and isinstance(given, Mapping):
        return {level: value for level, value in given.items() if level in stored}
    return given


def _check_identity(location: str, stored: Any, given: Any) -> None:
    """Raises ConfigError naming the first part of the run's identity that differs.

    A run stored before identities were recorded (no "identity") is not checked.
    """
    if not isinstance(stored, Mapping) or not isinstance(given, Mapping):
        return
    for part, meaning in _IDENTITY_PARTS.items():
        old = stored.get(part)
        new = _as_recorded(part, old, given.get(part))
        if old == new:
            continue
        detail = ""
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            diffs = [f"{k} {old.get(k)} -> {new.get(k)}" for k in sorted(set(old) | set(new), key=str) if old.get(k) != new.get(k)]
            detail = " (" + ", ".join(diffs)[:200] + ")"
        elif part == "seed":
            detail = f" ({old} -> {new})"
        raise ConfigError(
            f"run dir {location} was made with {meaning}{detail}; resume with the settings it was made with, or use another --out"
        )


def _describe(key: str, value: Any) -> str:
    if isinstance(value, Mapping):
        value = ", ".join(f"{k}={v}" for k, v in value.items()) or "(none)"
    return f"{key} {value}"


class RunStore:
    """A search run's store on any SQLAlchemy URL; thread-safe, every write committed at once.

    Args:
        url: a SQLAlchemy URL, e.g. "sqlite:///out/run.sqlite" or "postgresql+psycopg://...".
        run_id: which run of the database this store reads and writes.
        location: how errors name the store; defaults to the URL without its password.

        read_only: only read: no schema is created, no pragma that writes is set (the URL should
            open the database read-only too, as `open(read_only=True)` does).

    Raises:
        ConfigError: the store was written by a newer graphopt (a higher schema version), or its
            database cannot be read as a store.
    """

    def __init__(self, url: str | URL, *, run_id: str = "run", location: str | None = None, read_only: bool = False):
        self.url = make_url(url)
        self.run_id = run_id
        self.location = location or self.url.render_as_string(hide_password=True)
        self.read_only = read_only
        self.resumed = False
        self._session: str | None = None
        self._lock = threading.RLock()
        self._dir_lock: RunDirLock | None = None
        self._engine = open_store(self.url, self.location, read_only=read_only)

    @classmethod
    def open(
        cls, run_dir: str | Path, *, run_id: str = "run", create: bool = True, read_only: bool = False, lock: bool = False
    ) -> RunStore:
        """Opens the SQLite store `run_dir/run.sqlite`, after checking that it is one.

        Args:
            run_dir: the run directory.
            run_id: which run of the store.
            create: create the directory and the store when missing (never when `read_only`).
            read_only: open for reading (report, viz): nothing is created or written, not even
                SQLite's `-wal`/`-shm` files when no process has the store open; a read-only run
                directory works.
            lock: hold the run directory's lock (`graphopt.store.lock`) until `close()`, so a
                second writer of the same directory is refused; for the process that writes.

        Raises:
            ConfigError: one line each: no store (`create` false or `read_only`); `run_dir` is a
                file or not writable (for writing); another process holds the lock; `run.sqlite`
                is a directory, empty, truncated, damaged or another program's database.
        """
        path, url, dir_lock = open_run_dir(run_dir, STORE_FILENAME, create=create, read_only=read_only, lock=lock)
        try:
            store = cls(url, run_id=run_id, location=str(path), read_only=read_only)
        except BaseException:
            if dir_lock is not None:
                dir_lock.release()
            raise
        store._dir_lock = dir_lock
        return store

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RunStore({self.location!r}, run_id={self.run_id!r})"

    def close(self) -> None:
        """Releases the database connections (and the run directory's lock). Everything was committed already."""
        self._engine.dispose()
        if self._dir_lock is not None:
            self._dir_lock.release()

    @property
    def schema_version(self) -> int:
        """The schema version the store was written with."""
        with self._lock, self._engine.connect() as conn:
            return int(stored_schema_version(conn))  # type: ignore[arg-type]  (init_schema recorded it)

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
        clean = strip_secrets(jsonable(config))
        at = now()
        with self._lock, self._engine.begin() as conn:
            found = q.run_row(conn, self.run_id)
            if found is None:
                w.create_run(conn, self.run_id, clean, at)
                self.resumed = False
            else:
                for key in COMPATIBLE_KEYS:
                    if found.config.get(key) != _as_recorded(key, found.config.get(key), clean.get(key)):
                        raise ConfigError(
                            f"run dir {self.location} was made for {_describe(key, found.config.get(key))}; "
                            "use another --out or the same settings"
                        )
                _check_identity(self.location, found.config.get("identity"), clean.get("identity"))
                w.resume_run(conn, self.run_id, clean, at, previous_status=found.status)
                self.resumed = True
            self._session = uuid.uuid4().hex[:12]
        return self.run_id

    def run(self) -> RunRow | None:
        """The run's row, or None before `ensure_run`."""
        with self._lock, self._engine.connect() as conn:
            return q.run_row(conn, self.run_id)

    def set_status(self, status: str) -> None:
        """Sets the run's status: one of `RUN_STATUSES`."""
        if status not in RUN_STATUSES:
            raise RunError(f"unknown run status {status!r}{did_you_mean(status, RUN_STATUSES)}")
        self._update_run(status=status)

    def set_summary(self, summary: Mapping[str, Any]) -> None:
        """Stores the run's summary (winner, scores, spend), replacing any earlier one."""
        self._update_run(summary=jsonable(summary))

    def _update_run(self, **values: Any) -> None:
        self._require_run()
        with self._lock, self._engine.begin() as conn:
            w.update_run(conn, self.run_id, {"updated_at": now(), **values})

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
        spec_dict = jsonable(spec)
        if not isinstance(spec_dict, Mapping):
            raise RunError(f"candidate spec must be a dict or a GraphSpec, got {type(spec).__name__}")
        with self._lock:
            existing = self.find_by_hash(graph_hash)
            if existing is not None:
                return existing
            try:
                with self._engine.begin() as conn:
                    parent_ids = [self._resolve(conn, p, strict=True) for p in parents]
                    cid = w.insert_candidate(
                        conn, self.run_id, graph_hash=graph_hash, spec=spec_dict, name=name, generation=generation,
                        origin=origin, mutation=mutation, parent_ids=parent_ids, at=now(),
                    )
            except IntegrityError:
                existing = self.find_by_hash(graph_hash)  # another process added it first
                if existing is None:
                    raise
                return existing
            return self.candidate(cid)  # type: ignore[return-value]

    def candidate(self, ref: str) -> CandidateRow | None:
        """The candidate with this id or graph hash, or None."""
        with self._lock, self._engine.connect() as conn:
            rows = q.candidate_rows(conn, self.run_id, q.id_or_hash(ref))
        return rows[0] if rows else None

    def find_by_hash(self, graph_hash: str) -> CandidateRow | None:
        """The candidate with this graph hash, or None."""
        with self._lock, self._engine.connect() as conn:
            rows = q.candidate_rows(conn, self.run_id, t.candidate.c.graph_hash == graph_hash)
        return rows[0] if rows else None

    def candidates(self) -> list[CandidateRow]:
        """Every candidate with its evaluation and parents, in insertion order (c0001, c0002, ...)."""
        with self._lock, self._engine.connect() as conn:
            return q.candidate_rows(conn, self.run_id)

    def lineage(self) -> list[tuple[str, str]]:
        """Every (parent_id, child_id) edge, by child then parent position."""
        with self._lock, self._engine.connect() as conn:
            return q.lineage(conn, self.run_id)

    def _resolve(self, conn: Connection, ref: str, *, strict: bool) -> str | None:
        cid = q.candidate_id(conn, self.run_id, ref)
        if cid is None and strict:
            raise RunError(f"no candidate {ref!r} in run {self.run_id!r} of {self.location}")
        return cid

    # --------------------------------------------------------------------------- evaluations

    def start_evaluation(self, ref: str) -> None:
        """Marks a candidate's evaluation as running (by candidate id or graph hash)."""
        self._set_evaluation(ref, status=Status.running.value, started_at=now(), finished_at=None, error=None)

    def finish_evaluation(
        self,
        ref: str,
        *,
        val_score: float | None,
        val_stderr: float | None = None,
        val_scores: Mapping[str, float] | None = None,
        program: Mapping[str, Any] | Any = None,
        history: list[Any] | None = None,
        usage: Mapping[str, Any] | Any = None,
        status: Status = Status.done,
        note: str | None = None,
    ) -> EvaluationRow:
        """Records a finished evaluation, one a budget cap cut short (status "partial"), or one
        that stopped after its screen (status "screened": scored on a validation minibatch only).

        Args:
            ref: candidate id or graph hash.
            val_score: validation score of the tuned program (None only for a partial one).
            val_stderr: its standard error.
            val_scores: its score on each validation example, by example id (the score matrix).
            program: the tuned program (dict or `Program`).
            history: the inner loop's steps (JSON data).
            usage: the evaluation's usage, a `Ledger` or its `to_dict()`: the token columns per
                level and the dollars are read from it (a test score comes later, by `set_test_score`).
            status: "done"; "partial" for an inner loop a budget stopped: its scores are kept
                for the report, but it is not reused (a resumed run evaluates it again);
                "screened" for a graph that lost its race: its score is on the screen's few
                validation examples (its per-example scores go to split "screen", not "val", so
                the score matrix holds full evaluations only), and it is never a winner.
            note: why it is partial (stored as the evaluation's error text).

        Returns:
            The stored evaluation.
        """
        if status not in (Status.done, Status.partial, Status.screened):
            raise RunError(f"finish_evaluation takes status 'done', 'partial' or 'screened', not {status!r}")
        status = Status(status)
        if val_score is None and status != Status.partial:
            raise RunError(f"a {status} evaluation needs a val_score")
        if val_scores:
            self._require_run()
            with self._lock, self._engine.begin() as conn:
                cid = self._resolve(conn, ref, strict=True)
                w.replace_example_scores(conn, self.run_id, cid, "screen" if status == Status.screened else "val", val_scores)
        usage_d = jsonable(usage)
        spend = spend_values(usage_d)
        at = now()
        return self._set_evaluation(
            ref,
            status=status.value,
            val_score=val_score,
            val_stderr=val_stderr,
            **spend,
            usage=usage_d,
            program=jsonable(program),
            history=jsonable(history),
            error=note,
            started_at=func.coalesce(t.evaluation.c.started_at, at),
            finished_at=at,
        )

    def fail_evaluation(
        self, ref: str, error: str | BaseException, *, usage: Mapping[str, Any] | Any = None, status: Status = Status.failed
    ) -> None:
        """Marks an evaluation as failed (or partial with no score); a resumed run retries it.

        Args:
            ref: candidate id or graph hash.
            error: why (an exception is stored as "Type: message").
            usage: what the attempt spent (a `Ledger` or its `to_dict()`), kept in the totals.
            status: "failed", or "partial" when a budget cap stopped it before any score.
        """
        if isinstance(error, BaseException):
            error = f"{type(error).__name__}: {error}"
        values: dict[str, Any] = {"status": Status(status).value, "error": error, "finished_at": now()}
        if usage is not None:
            usage_d = jsonable(usage)
            values.update(spend_values(usage_d), usage=usage_d)
        self._set_evaluation(ref, **values)

    def set_example_scores(self, ref: str, split: str, scores: Mapping[str, float]) -> None:
        """Stores a candidate's per-example scores on a split (e.g. "confirm": held-out validation)."""
        self._require_run()
        with self._lock, self._engine.begin() as conn:
            cid = self._resolve(conn, ref, strict=True)
            w.replace_example_scores(conn, self.run_id, cid, split, scores)

    def set_test_score(self, ref: str, score: float, stderr: float | None = None) -> None:
        """Stores the test score of a reported candidate."""
        self._set_evaluation(ref, test_score=score, test_stderr=stderr)

    def evaluation(self, ref: str) -> EvaluationRow | None:
        """A candidate's evaluation in any status, or None for an unknown candidate."""
        with self._lock, self._engine.connect() as conn:
            cid = self._resolve(conn, ref, strict=False)
            return q.evaluation_of(conn, self.run_id, cid) if cid is not None else None

    def done_evaluation(self, ref: str) -> EvaluationRow | None:
        """The finished evaluation of a candidate (by id or graph hash), or None if it is not done."""
        found = self.evaluation(ref)
        return found if found is not None and found.status == Status.done else None

    def example_scores(self, split: str = "val", ref: str | None = None) -> dict[str, dict[str, float]]:
        """The score matrix: {candidate id: {example id: score}} on a split (of one candidate, or all)."""
        with self._lock, self._engine.connect() as conn:
            cid = self._resolve(conn, ref, strict=False) if ref is not None else None
            if ref is not None and cid is None:
                return {}
            return q.example_scores(conn, self.run_id, split, cid)

    def best(self, metric: str = "val_score") -> CandidateRow | None:
        """The done candidate with the highest `metric` ("val_score" or "test_score"); ties go to the earliest."""
        if metric not in ("val_score", "test_score"):
            raise RunError(f"unknown metric {metric!r}; use 'val_score' or 'test_score'")
        with self._lock, self._engine.connect() as conn:
            cid = q.best_candidate_id(conn, self.run_id, metric)
        return self.candidate(cid) if cid is not None else None

    def _set_evaluation(self, ref: str, **values: Any) -> EvaluationRow:
        self._require_run()
        with self._lock:
            with self._engine.begin() as conn:
                cid = self._resolve(conn, ref, strict=True)
                w.update_evaluation(conn, self.run_id, cid, values)  # type: ignore[arg-type]
            return self.evaluation(cid)  # type: ignore[arg-type,return-value]

    # -------------------------------------------------------------------------------- events

    def add_event(self, kind: str, payload: Any = None) -> EventRow:
        """Appends an event ("generation", "rejected_proposal", "stop", "note", ...) with JSON payload."""
        self._require_run()
        at = now()
        payload = jsonable(payload)
        with self._lock, self._engine.begin() as conn:
            event_id = w.insert_event(conn, self.run_id, at, kind, payload)
        return EventRow(id=event_id, at=aware(at), kind=kind, payload=payload)

    def events(self, kind: str | None = None, *, after: int | None = None) -> list[EventRow]:
        """The run's events in order, optionally of one kind or after a given event id (for polling)."""
        with self._lock, self._engine.connect() as conn:
            return q.event_rows(conn, self.run_id, kind, after)

    # --------------------------------------------------------------------------------- usage

    def record_usage(self, level: str, usage: Mapping[str, Any] | Any) -> None:
        """Records this session's cumulative usage of one level, replacing its earlier record.

        Call it as often as you like with the running total of the process (e.g.
        `ledger.level("meta")`); each `ensure_run` starts a new session, and `usage_totals` adds the
        sessions up, so spend before a kill is kept after a resume.
        """
        self._require_run()
        values = usage_values(usage)
        values["updated_at"] = now()
        with self._lock, self._engine.begin() as conn:
            w.upsert_usage(conn, self.run_id, self._session, level, values)  # type: ignore[arg-type]

    def record_ledger(self, ledger: Mapping[str, Any] | Any) -> None:
        """`record_usage` for every level of a `Ledger` (or its `to_dict()`)."""
        for level, usage in (jsonable(ledger).get("levels") or {}).items():
            self.record_usage(level, usage)

    def usage_totals(self) -> dict[str, Any]:
        """The run's usage over all sessions: {"levels": {level: usage}, "total": usage}.

        Usage dicts have the `Usage.to_dict()` keys (calls, tokens, cost in dollars, ...); the levels
        program, optimizer and meta are always present.
        """
        with self._lock, self._engine.connect() as conn:
            return q.usage_totals(conn, self.run_id, SPEND_LEVELS)
