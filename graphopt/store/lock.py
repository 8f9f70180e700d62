"""The run directory lock: one process at a time writes a run directory.

The writer holds an exclusive `flock` on `RUN_DIR/.lock`, with its pid written in the file for the
message a second writer gets. The operating system drops the lock when the process ends, however
it ends (kill -9 included), so a stale lock needs no cleaning: the next writer simply gets it, and
the dead pid left in the file is overwritten. The file itself is never deleted (deleting it
would let two processes hold locks on two different files of the same name).

Example:
    >>> import tempfile
    >>> run_dir = tempfile.mkdtemp()
    >>> with lock_run_dir(run_dir) as lock:
    ...     lock.held
    True
"""

from __future__ import annotations

__all__ = ["LOCK_FILENAME", "RunDirLock", "lock_run_dir", "prepare_run_dir"]

import os
from pathlib import Path
from types import TracebackType

from ..errors import ConfigError

try:
    import fcntl
except ImportError:  # Windows: no flock; the lock is then advisory through the pid file only
    fcntl = None  # type: ignore[assignment]

LOCK_FILENAME = ".lock"


def prepare_run_dir(run_dir: str | Path) -> Path:
    """Creates `run_dir` if needed and checks that this process can write in it.

    Raises:
        ConfigError: `run_dir` is a file, or cannot be created or written (one line, naming --out).
    """
    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} is a file, not a run directory: use another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create run directory {path}: {exc.strerror or exc}: use another --out") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"run directory {path} is not writable: use another --out, or make it writable")
    return path


class RunDirLock:
    """An exclusive lock on a run directory, held from `acquire()` to `release()`.

    Args:
        run_dir: the run directory (it must exist).
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILENAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> RunDirLock:
        """Takes the lock, or fails at once if another process holds it.

        Returns:
            self.

        Raises:
            ConfigError: another process holds it ("run dir X is in use by pid N ..."), or the
                lock file cannot be written.
        """
        if self._fd is not None:
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ConfigError(
                f"cannot lock run dir {self.run_dir} ({self.path}: {exc.strerror or exc}): use another --out"
            ) from None
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held by another process (or another open in this one)
            holder = _read_pid(fd)
            os.close(fd)
            by = f"pid {holder}" if holder else "another process"
            raise ConfigError(
                f"run dir {self.run_dir} is in use by {by} (another graphopt search); "
                "wait for it or use another --out"
            ) from None
        except OSError as exc:  # e.g. a file system without locks
            os.close(fd)
            raise ConfigError(
                f"cannot lock run dir {self.run_dir} ({exc.strerror or exc}): use an --out on a local disk"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        """Lets the lock go (also done by the operating system when the process ends)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # no pid of a process that no longer holds it
        except OSError:
            pass
        os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> RunDirLock:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"RunDirLock({str(self.run_dir)!r}, held={self.held})"


def lock_run_dir(run_dir: str | Path) -> RunDirLock:
    """Creates `run_dir` if needed and locks it: `with lock_run_dir(out): ...` around the writing.

    Raises:
        ConfigError: `run_dir` is unusable (see `prepare_run_dir`) or in use by another process.
    """
    return RunDirLock(prepare_run_dir(run_dir)).acquire()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
