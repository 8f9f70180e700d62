"""The databases the store's tests run on: SQLite always, PostgreSQL when a server is given.

`$GRAPHOPT_TEST_PG_URL` names a PostgreSQL database the tests may wipe (`.ci/start_postgres`
starts one and prints it). Without it, or when it does not answer, the PostgreSQL cases skip
with the reason; with `GRAPHOPT_REQUIRE_PG=1` (CI) they fail instead.
"""

from __future__ import annotations

import os

import pytest

PG_ENV = "GRAPHOPT_TEST_PG_URL"
BACKENDS = ("sqlite", "postgresql")


def _missing(reason: str) -> None:
    if os.environ.get("GRAPHOPT_REQUIRE_PG") == "1":
        pytest.fail(f"GRAPHOPT_REQUIRE_PG=1 but {reason}")
    pytest.skip(reason)


def pg_url() -> str:
    """A wiped PostgreSQL database's URL (empty public schema), or the test skips/fails saying why."""
    url = os.environ.get(PG_ENV)
    if not url:
        _missing(f"no PostgreSQL server: set ${PG_ENV} (eval \"$(bash .ci/start_postgres)\" starts one)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _missing("the psycopg driver is not installed: pip install -e '.[postgres]'")
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    except OperationalError as exc:
        _missing(f"PostgreSQL at ${PG_ENV} does not answer: {str(exc.orig).splitlines()[0]}")
    finally:
        engine.dispose()
    return url


def backend_url(backend: str, tmp_path) -> str:
    """A fresh store database of one backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'run.sqlite'}"
    return pg_url()
