"""Checks a run makes before its first model call, and the error-rate rule after its calls.

Whatever can be known before spending (a response cache directory that cannot be written) is
checked first, so a mistake costs nothing; whatever can only be counted (examples whose calls
failed after their retries) is held against `--max-error-rate`, so a result made mostly of
failures is refused instead of being reported as a score.
"""

from __future__ import annotations

__all__ = ["check_answer_length", "check_cache_dir", "check_output", "check_error_rate", "DEFAULT_MAX_ERROR_RATE"]

import os
import tempfile
from pathlib import Path

from ..errors import ConfigError, RunError
from ..lm import LM
from ..program.run import ErrorTally

# Share of examples whose model call failed (after retries) that eval and optimize tolerate.
DEFAULT_MAX_ERROR_RATE = 0.05


def check_answer_length(lm: LM, max_tokens: int | None) -> None:
    """An answer length the embedded model's context can hold (half of it: the prompt needs room).

    Raises:
        ConfigError: --answer-tokens beyond what the program model can write.
    """
    if max_tokens is None or not lm.model("program").startswith("local/"):
        return
    room = lm.config.local.n_ctx // 2
    if max_tokens > room:
        raise ConfigError(
            f"--answer-tokens {max_tokens} is more than the embedded model can write here (half its context of "
            f"{lm.config.local.n_ctx} tokens, {room}): lower it, or raise local.n_ctx"
        )


def check_cache_dir(lm: LM) -> None:
    """Makes sure the client's response cache directory can be written, before any call.

    Raises:
        ConfigError: the directory is a file, cannot be created, or cannot be written.
    """
    directory: Path | None = lm.cache.directory
    if directory is None:
        return
    fix = "use another --cache-dir, or --no-cache"
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"cache dir {directory} is a file, not a directory: {fix}")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
        store = directory / "responses.sqlite"
        if store.exists():
            with store.open("r+b"):
                pass
    except OSError as exc:
        raise ConfigError(f"cannot write the response cache in {directory} ({exc.strerror or exc}): {fix}") from None


def check_output(path: Path, flag: str, *, directory: bool) -> None:
    """Refuses, before any model call, an output the command could not write at its end.

    Args:
        path: the file (or directory, when `directory`) the command will write.
        flag: the option that named it, for the message (e.g. "--out").
        directory: whether `path` is a directory of outputs rather than one file.

    Raises:
        ConfigError: `path` is of the wrong kind, or the nearest existing folder above it
            cannot be written.
    """
    if path.exists():
        if directory and not path.is_dir():
            raise ConfigError(f"{flag} {path} is a file: give a directory")
        if not directory and path.is_dir():
            raise ConfigError(f"{flag} {path} is a directory: give a file name, e.g. {path / 'result.json'}")
    target = path if directory and path.is_dir() else path.parent
    existing = next((p for p in (target, *target.parents) if p.exists()), None)
    if existing is not None and (not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK)):
        raise ConfigError(f"{flag} {path} cannot be written ({existing} is not a writable directory)")


def check_error_rate(tally: ErrorTally, max_error_rate: float, what: str = "examples") -> None:
    """Raises when more than `max_error_rate` of the tallied examples errored.

    Raises:
        RunError: one line with the count, the share, the limit and the first error.
    """
    if tally.errors and tally.error_rate > max_error_rate:
        raise RunError(
            f"{tally.errors} of {tally.examples} {what} failed after retries ({tally.error_rate:.0%}, "
            f"more than --max-error-rate {max_error_rate:g}); no result written. First error: {tally.first_error}"
        )
