"""A response cache on disk: one SQLite file, keyed by a hash of the whole request.

Nothing is created until the first write, so importing or constructing costs no disk access.
Writes made while an event loop runs are committed together at the end of the loop's current
iteration (one transaction for all the answers that arrived together, instead of one each);
`get` sees them before that, and `close` or `flush` commits whatever is left.
"""

from __future__ import annotations

__all__ = ["ResponseCache", "request_key"]

import asyncio
import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any


def request_key(request: dict[str, Any]) -> str:
    blob = json.dumps(request, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    """Maps a request key to the stored response dict. `None` directory means a disabled cache."""

    def __init__(self, directory: Path | None):
        self.directory = directory
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._pending: dict[str, str] = {}
        self._flush_scheduled = False

    def _connect(self, create: bool) -> sqlite3.Connection | None:
        if self._conn is not None or self.directory is None:
            return self._conn
        path = self.directory / "responses.sqlite"
        if not create and not path.exists():
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._conn = conn
        return conn

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            blob = self._pending.get(key)
            if blob is not None:
                return json.loads(blob)
            conn = self._connect(create=False)
            if conn is None:
                return None
            row = conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        if self.directory is None:
            return
        blob = json.dumps(value, ensure_ascii=False)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._pending[key] = blob
            if loop is None:
                self._write_pending()
                return
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        """Commits the writes not yet on disk."""
        with self._lock:
            self._flush_scheduled = False
            self._write_pending()

    def _write_pending(self) -> None:
        if not self._pending:
            return
        conn = self._connect(create=True)
        assert conn is not None
        conn.execute("BEGIN")
        conn.executemany("INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)", self._pending.items())
        conn.execute("COMMIT")
        self._pending.clear()

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
