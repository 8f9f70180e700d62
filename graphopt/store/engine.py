"""The run store's database: an engine set up for its backend, and a schema created and checked.

SQLite gets write-ahead logging, so the HTML report can read while the search writes, plus foreign
keys and a busy timeout; an in-memory SQLite database keeps a single connection. A read-only
engine switches nothing and creates nothing: `check_schema` only reads the schema version.
"""

from __future__ import annotations

__all__ = ["open_store", "open_engine", "init_schema", "check_schema", "stored_schema_version"]

from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, insert, select
from sqlalchemy import event as sa_event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

from ..errors import ConfigError
from . import models as t


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer, nor it them
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_read_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")  # wait out a writer's commit; changes nothing
    cursor.close()


def open_engine(url: URL, *, read_only: bool = False) -> Engine:
    """An engine for `url`; SQLite ones shared across threads, with the pragmas above (or, read-only, none that write)."""
    kwargs: dict[str, Any] = {}
    if url.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False}
        if url.database in (None, "", ":memory:"):
            kwargs["poolclass"] = StaticPool  # one connection, or each would see its own empty db
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":
        sa_event.listen(engine, "connect", _sqlite_read_pragmas if read_only else _sqlite_pragmas)
    return engine


def open_store(url: URL, location: str, *, read_only: bool = False) -> Engine:
    """An engine on a store whose schema is created (or, read-only, checked).

    Raises:
        ConfigError: the schema version is newer than this graphopt's, or the database refuses
            (damaged, not writable...), in one line naming the store.
    """
    engine = open_engine(url, read_only=read_only)
    try:
        (check_schema if read_only else init_schema)(engine, location)
    except DBAPIError as exc:
        engine.dispose()
        reason = " ".join(str(exc.orig or exc).split())[:200]
        if url.get_backend_name() != "sqlite":
            fix = "check that the database server runs and that the --store URL names it"
        else:
            fix = "check the file, or give another run directory" if read_only else "use another --out"
        raise ConfigError(f"run store {location} cannot be {'read' if read_only else 'written'} ({reason}): {fix}") from None
    except BaseException:
        engine.dispose()
        raise
    return engine


def stored_schema_version(conn: Connection) -> str | None:
    """The schema version recorded in the store (as stored, a string), or None before `init_schema`."""
    return conn.execute(select(t.store_meta.c.value).where(t.store_meta.c.key == "schema_version")).scalar()


def init_schema(engine: Engine, location: str) -> None:
    """Creates the tables a new store lacks and records its schema version.

    Raises:
        ConfigError: the store was written by a newer graphopt (a higher schema version).
    """
    with engine.begin() as conn:
        t.metadata.create_all(conn)
        found = stored_schema_version(conn)
        if found is None:
            conn.execute(insert(t.store_meta).values(key="schema_version", value=str(t.SCHEMA_VERSION)))
        elif int(found) > t.SCHEMA_VERSION:
            raise ConfigError(
                f"run store {location} has schema version {found}; this graphopt reads up to "
                f"{t.SCHEMA_VERSION}, so upgrade graphopt or use another --out"
            )


def check_schema(engine: Engine, location: str) -> None:
    """Reads the schema version of an existing store without writing anything.

    Raises:
        ConfigError: the database holds no graphopt store, or one written by a newer graphopt.
    """
    with engine.connect() as conn:
        found = stored_schema_version(conn)
    if found is None or not str(found).isdigit():
        raise ConfigError(f"{location} holds no graphopt run store (no schema version recorded)")
    if int(found) > t.SCHEMA_VERSION:
        raise ConfigError(
            f"run store {location} has schema version {found}; this graphopt reads up to "
            f"{t.SCHEMA_VERSION}, so upgrade graphopt"
        )
