"""Checking a run store's SQLite file before it is opened, and opening it read-only.

SQLite opens almost anything: a 0-byte file becomes an empty database, another program's database
gets graphopt's tables added, and a damaged one fails later with a traceback. So before a store is
opened, `check_store_file` reads the file's header and table names (read-only, without SQLAlchemy)
and refuses, in one line, whatever is not a graphopt run store. Read-only opening (`read_only_url`)
makes no schema, no WAL switch and no write of any kind.
"""

from __future__ import annotations

__all__ = ["open_run_dir", "check_store_file", "read_only_url", "read_only_connect", "read_only_mode"]

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import URL

from ..errors import ConfigError
from .lock import RunDirLock, prepare_run_dir

_HEADER = b"SQLite format 3\x00"
_STORE_TABLE = "store_meta"  # graphopt's first table; its schema_version row marks a store


def open_run_dir(
    run_dir: str | Path, filename: str, *, create: bool, read_only: bool, lock: bool
) -> tuple[Path, URL, RunDirLock | None]:
    """Checks a run directory and its store file for `RunStore.open`; returns the URL to open.

    Returns:
        The directory, the store's SQLAlchemy URL (read-only when asked), and the directory's
        lock when `lock` (held: the caller releases it).

    Raises:
        ConfigError: see `RunStore.open`.
    """
    path = Path(run_dir)
    db = path / filename
    if read_only:
        fix = "give the directory of a graphopt search"
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{path} is a file, not a run directory: {fix}")
        if not check_store_file(db, writing=False, fix=fix):
            raise ConfigError(f"no run store in {path} (expected {db})")
        return path, read_only_url(db, immutable=read_only_mode(db)), None
    if not create and not path.is_file() and not (db.exists() or db.is_symlink()):
        raise ConfigError(f"no run store in {path} (expected {db})")
    prepare_run_dir(path)
    # Checked before the lock, so refusing a bad file leaves no .lock behind, and again under
    # it, since another writer may have changed the file in between.
    _check_for_writing(db)
    dir_lock = RunDirLock(path).acquire() if lock else None
    try:
        _check_for_writing(db)
    except BaseException:
        if dir_lock is not None:
            dir_lock.release()
        raise
    return path, URL.create("sqlite", database=str(db.resolve())), dir_lock


def _check_for_writing(db: Path) -> None:
    if check_store_file(db, writing=True, fix="use another --out"):
        _check_writable(db)


def check_store_file(db: Path, *, writing: bool, fix: str) -> bool:
    """Refuses a `run.sqlite` that is not a graphopt run store; True when the file exists.

    A missing file is fine (a new store is created, when writing). An empty SQLite database (one
    with no tables) is accepted for writing only.

    Args:
        db: the store file.
        writing: whether the store is opened for writing.
        fix: what the user should do instead, ending every message (e.g. "use another --out").

    Raises:
        ConfigError: a directory, an unreadable, empty, truncated or corrupt file, a file of
            another kind, or another program's SQLite database.
    """
    if not db.exists() and not db.is_symlink():
        return False
    if db.is_dir():
        raise ConfigError(f"{db} is a directory, not a run store: {fix}")
    try:
        with db.open("rb") as handle:
            header = handle.read(100)
        size = db.stat().st_size
    except OSError as exc:
        raise ConfigError(f"cannot read {db}: {exc.strerror or exc}: {fix}") from None
    if size == 0:
        raise ConfigError(f"{db} is an empty file (0 bytes), not a run store: delete it or {fix}")
    if not header.startswith(_HEADER) or len(header) < 100:
        raise ConfigError(f"{db} is not a SQLite file (damaged, or another kind of file): {fix}")
    expected = _pages(header) * _page_size(header)
    if expected and size < expected:
        raise ConfigError(f"{db} is truncated ({size:,} of {expected:,} bytes): {fix}")
    tables = _tables(db, fix)
    if not tables and writing:
        return True
    if _STORE_TABLE not in tables:
        listed = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        what = f"it has tables {listed}" if tables else "it has no tables"
        raise ConfigError(f"{db} is a SQLite database but not a graphopt run store ({what}): {fix}")
    return True


def _check_writable(db: Path) -> None:
    """Refuses a store file (or its write-ahead log) this process cannot write: SQLite would open
    it read-only without a word and fail at the first write."""
    for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        if path.exists() and not os.access(path, os.R_OK | os.W_OK):
            raise ConfigError(f"run store file {path} is read-only: make it writable, or use another --out")


def read_only_url(db: Path, *, immutable: bool) -> URL:
    """A SQLAlchemy URL opening `db` read-only: SQLite's `immutable=1`, or `mode=ro` (see `read_only_connect`)."""
    return URL.create("sqlite", database=_uri(db, immutable), query={"uri": "true"})


def read_only_connect(db: Path) -> tuple[sqlite3.Connection, bool]:
    """A read-only sqlite3 connection to `db`, and whether it is opened immutable.

    With no `-wal` file next to it no process has the store open, so it is read as an immutable
    file: SQLite then creates no `-wal` or `-shm` file (`mode=ro` would leave both behind). With
    one, a search may be writing, so `mode=ro` reads the write-ahead log too; where that fails
    (a directory this process cannot write, so no `-shm`), the main file is read as it is.

    Raises:
        sqlite3.Error: SQLite cannot read the file.
    """
    immutable = not Path(f"{db}-wal").exists()
    try:
        return _connect(db, immutable), immutable
    except sqlite3.OperationalError:
        if immutable:
            raise
    return _connect(db, True), True


def read_only_mode(db: Path) -> bool:
    """Whether `db` must be read immutable (True) or with `mode=ro` (see `read_only_connect`).

    Raises:
        ConfigError: SQLite cannot read the file.
    """
    try:
        conn, immutable = read_only_connect(db)
    except sqlite3.Error as exc:
        raise ConfigError(f"{db} cannot be read as a run store ({exc})") from None
    conn.close()
    return immutable


def _connect(db: Path, immutable: bool) -> sqlite3.Connection:
    conn = sqlite3.connect(_uri(db, immutable), uri=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        conn.close()
        raise
    return conn


def _uri(db: Path, immutable: bool) -> str:
    return f"file:{quote(str(db.resolve()))}?" + ("immutable=1" if immutable else "mode=ro")


def _tables(db: Path, fix: str) -> set[str]:
    try:
        conn, _ = read_only_connect(db)
        try:
            names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if _STORE_TABLE in names:
                conn.execute(f"SELECT value FROM {_STORE_TABLE} WHERE key = 'schema_version'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"{db} cannot be read as a run store ({exc}): {fix}") from None
    return names


def _page_size(header: bytes) -> int:
    size = int.from_bytes(header[16:18], "big")
    return 65536 if size == 1 else size


def _pages(header: bytes) -> int:
    """The page count the header records, when it is valid (else 0: nothing to compare)."""
    change_counter, valid_for = header[24:28], header[92:96]
    return int.from_bytes(header[28:32], "big") if change_counter == valid_for else 0
