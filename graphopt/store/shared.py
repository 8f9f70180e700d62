"""Run stores on a shared database (PostgreSQL, or any SQLAlchemy URL) behind a run directory.

A search given `--store URL` keeps its files (best graph, report) in the run directory as usual,
but writes its store to the database at URL, as the run named after the directory. The directory
gets a small `store.json` naming the URL (without its password) and the run id, so that
`graphopt report RUN_DIR` finds the store wherever it reads from. A password is never written:
give it to each process in the environment (`PGPASSWORD`, or a `~/.pgpass` file).
"""

from __future__ import annotations

__all__ = ["RunDir", "open_run_store", "run_store_exists", "POINTER_FILENAME"]

import json
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from ..errors import ConfigError
from .files import check_store_file
from .lock import RunDirLock, prepare_run_dir
from .run_store import STORE_FILENAME, RunStore

POINTER_FILENAME = "store.json"


def _url(text: str):
    try:
        url = make_url(text)
    except ArgumentError:
        raise ConfigError(f"--store {text!r} is not a database URL: use e.g. postgresql+psycopg://USER@HOST/DB") from None
    if url.password:
        raise ConfigError("--store holds a password: leave it out of the URL and set PGPASSWORD (or ~/.pgpass) instead")
    return url


def _pointer(run_dir: Path) -> dict | None:
    path = run_dir / POINTER_FILENAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        return {"url": str(data["url"]), "run_id": str(data["run_id"])}
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{path} is not a store pointer (it needs url and run_id): remove it or fix it") from None


def run_store_exists(run_dir: str | Path, url: str | None = None) -> bool:
    """Whether the run directory (or the database it points to) already holds a run."""
    run_dir = Path(run_dir)
    pointer = _pointer(run_dir)
    if url is None and pointer is None:
        return (run_dir / STORE_FILENAME).exists()
    target = _url(url) if url is not None else make_url(pointer["url"])  # type: ignore[index]
    run_id = pointer["run_id"] if pointer else run_dir.resolve().name
    with RunStore(target, run_id=run_id) as store:
        return store.run() is not None


def open_run_store(
    run_dir: str | Path, url: str | None = None, *, read_only: bool = False, lock: bool = False, create: bool = True
) -> RunStore:
    """The store of a run directory: its own `run.sqlite`, or the database its pointer (or `url`) names.

    Args:
        run_dir: the run directory.
        url: a database to keep the store in (written to the directory's pointer file); None
            reads the pointer when there is one, else uses `run_dir/run.sqlite`.
        read_only, lock, create: as for `RunStore.open`.

    Raises:
        ConfigError: a bad URL or pointer, a URL other than the one the directory points to, the
            database refuses, or the directory is in use (see `RunStore.open`).
    """
    run_dir = Path(run_dir)
    pointer = _pointer(run_dir) if run_dir.is_dir() else None
    if url is None and pointer is None:
        return RunStore.open(run_dir, create=create, read_only=read_only, lock=lock)
    if url is not None and pointer is not None and make_url(pointer["url"]) != _url(url):
        raise ConfigError(f"run dir {run_dir} keeps its store at {pointer['url']}, not {url}: give that --store, or another --out")
    target = _url(url) if url is not None else make_url(pointer["url"])  # type: ignore[index]
    run_id = pointer["run_id"] if pointer else run_dir.resolve().name
    dir_lock = None
    if not read_only:
        prepare_run_dir(run_dir)
        dir_lock = RunDirLock(run_dir).acquire() if lock else None
    try:
        store = RunStore(target, run_id=run_id, location=f"{target.render_as_string(hide_password=True)} (run {run_id})", read_only=read_only)
    except BaseException:
        if dir_lock is not None:
            dir_lock.release()
        raise
    if pointer is None:
        (run_dir / POINTER_FILENAME).write_text(json.dumps({"url": target.render_as_string(), "run_id": run_id}, indent=2) + "\n")
    store._dir_lock = dir_lock
    return store


@dataclass(frozen=True)
class RunDir:
    """Where a search keeps its run, and whether the run there is continued.

    Args:
        path: the run directory (best graph, report, log; and `run.sqlite` unless `store_url`).
        store_url: keep the store in this database (e.g. PostgreSQL) instead; the run is named
            after the directory.
        resume: continue the run the directory holds (False: start a new one there).

    Example:
        >>> RunDir("runs/a", resume=True).path
        PosixPath('runs/a')
    """

    path: Path
    store_url: str | None = None
    resume: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def of(cls, where: RunDir | str | Path) -> RunDir:
        """`where` as a RunDir: a bare directory is a new run kept in its own `run.sqlite`."""
        return where if isinstance(where, RunDir) else cls(Path(where))

    def check(self) -> None:
        """The directory fits the request: no run there for a new search, a run there to resume.

        Raises:
            ConfigError: a run where a new one was asked for, none where a resume was (a typo in
                --out must not start, and pay for, a new run), or a file there that is no run store.
        """
        if not self.resume and self.store_url is None:  # a file that is no store is named as such, not as "a run"
            check_store_file(self.path / STORE_FILENAME, writing=True, fix="use another --out")
        exists = run_store_exists(self.path, self.store_url)
        if not self.resume and exists:
            raise ConfigError(f"{self.path} already holds a run: add --resume to continue it, or choose another --out")
        if self.resume and not exists:
            raise ConfigError(f"{self.path} holds no run to resume: check --out, or leave out --resume to start a new run")

    def open(self) -> RunStore:
        """The run's store, opened for writing by this process alone (a second writer is refused)."""
        return open_run_store(self.path, self.store_url, lock=True)
