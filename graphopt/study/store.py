"""The study store: one row per cell (pending, done or failed) with its result, on any SQLAlchemy URL.

A cell's result is written in one transaction when it finishes, so a study killed with SIGKILL
loses only the cells in flight, and `--resume` runs exactly the cells that are not done.
SQLite (`STUDY_DIR/study.sqlite`) by default; a PostgreSQL URL works the same.
"""

from __future__ import annotations

__all__ = ["StudyStore", "CellRecord", "STUDY_FILENAME"]

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.exc import DBAPIError

from ..errors import ConfigError
from ..status import Status
from ..store.engine import open_engine
from ..store.serialize import jsonable, strip_secrets

# Looks at a new store's tables before giving up on a race with another process creating them.
TABLE_ATTEMPTS = 5

STUDY_FILENAME = "study.sqlite"

metadata = MetaData()
study = Table(
    "study",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("created_at", DateTime, nullable=False),
)
study_cell = Table(
    "study_cell",
    metadata,
    Column("study_id", String(200), primary_key=True),
    Column("key", String(500), primary_key=True),
    Column("status", String(20), nullable=False),
    Column("cell", JSON, nullable=False),
    Column("result", JSON),
    Column("error", Text),
    Column("finished_at", DateTime),
)


@dataclass(frozen=True)
class CellRecord:
    key: str
    status: Status
    cell: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class StudyStore:
    """The cells of one study in a database.

    Args:
        url: a SQLAlchemy URL ("sqlite:///DIR/study.sqlite", "postgresql+psycopg://USER@HOST/DB").
        study_id: the study's name in the database.

    Raises:
        ConfigError: the database cannot be opened or written.
    """

    def __init__(self, url: str, study_id: str):
        from sqlalchemy import make_url

        self.url = make_url(url)
        self.study_id = study_id
        self._lock = threading.Lock()
        self._engine = open_engine(self.url)
        try:
            self._create_tables()
        except DBAPIError as exc:
            self._engine.dispose()
            reason = " ".join(str(exc.orig or exc).split())[:200]
            raise ConfigError(f"study store {self.url.render_as_string(hide_password=True)} cannot be written ({reason})") from None

    def _create_tables(self) -> None:
        # Two processes opening a new store at once (a study and a reader) may both find the
        # tables missing; the one that loses the race finds them there on a later look (the
        # other's CREATE may still be uncommitted at the second look: a few, spaced out).
        for attempt in range(1, TABLE_ATTEMPTS + 1):
            try:
                with self._engine.begin() as conn:
                    metadata.create_all(conn)
                return
            except DBAPIError:
                if attempt == TABLE_ATTEMPTS:
                    raise
                time.sleep(0.05 * attempt)

    @classmethod
    def in_dir(cls, out_dir: str | Path, study_id: str) -> StudyStore:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{out_dir / STUDY_FILENAME}", study_id)

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> StudyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def exists(self) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(study.c.id).where(study.c.id == self.study_id)).first() is not None

    def start(self, spec: dict[str, Any], cells: list[dict[str, Any]]) -> None:
        """Records the study and its cells (pending); cells already known keep their status.

        Raises:
            ConfigError: the store holds this study with another spec (resume needs the same file).
        """
        clean = strip_secrets(jsonable(spec))
        with self._lock, self._engine.begin() as conn:
            found = conn.execute(select(study.c.spec).where(study.c.id == self.study_id)).scalar()
            if found is None:
                conn.execute(insert(study).values(id=self.study_id, spec=clean, created_at=_now()))
            elif found != clean:
                raise ConfigError(
                    f"study {self.study_id!r} in this store was started from another study file: resume with that file, or use another --out"
                )
            known = set(conn.execute(select(study_cell.c.key).where(study_cell.c.study_id == self.study_id)).scalars())
            for cell in cells:
                if cell["key"] not in known:
                    conn.execute(insert(study_cell).values(study_id=self.study_id, key=cell["key"], status=Status.pending.value, cell=cell))

    def finish(self, key: str, result: dict[str, Any]) -> None:
        """Stores a cell's result: it is done and never run again."""
        self._set(key, status=Status.done.value, result=jsonable(result), error=None, finished_at=_now())

    def fail(self, key: str, error: str, result: dict[str, Any] | None = None) -> None:
        """Records why a cell failed; a resumed study runs it again."""
        self._set(key, status=Status.failed.value, result=jsonable(result) if result else None, error=error[:1000], finished_at=_now())

    def _set(self, key: str, **values: Any) -> None:
        c = study_cell.c
        with self._lock, self._engine.begin() as conn:
            conn.execute(update(study_cell).where(c.study_id == self.study_id, c.key == key).values(**values))

    def cells(self) -> list[CellRecord]:
        """Every cell of the study, in the order they were added."""
        c = study_cell.c
        with self._engine.connect() as conn:
            rows = conn.execute(select(study_cell).where(c.study_id == self.study_id)).mappings().all()
        order = {row["key"]: i for i, row in enumerate(rows)}
        records = [CellRecord(r["key"], Status(r["status"]), r["cell"], r["result"], r["error"]) for r in rows]
        return sorted(records, key=lambda r: (r.cell.get("order", order[r.key]), r.key))
