"""A response cache on disk: one SQLite file, keyed by a hash of the whole request.

Nothing is created until the first write, so importing or constructing costs no disk access.
"""

from __future__ import annotations

__all__ = ["ResponseCache", "request_key"]

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

    @property
    def enabled(self) -> bool:
        return self.directory is not None

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
            conn = self._connect(create=False)
            if conn is None:
                return None
            row = conn.execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict[str, Any]) -> None:
        if self.directory is None:
            return
        with self._lock:
            conn = self._connect(create=True)
            assert conn is not None
            conn.execute(
                "INSERT OR REPLACE INTO responses (key, value) VALUES (?, ?)",
                (key, json.dumps(value, ensure_ascii=False)),
            )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
