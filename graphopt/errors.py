"""The exception tree: one root, one subclass per phase.

Every error a user can cause is a `GraphoptError`; the CLI turns it into one line and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "GraphoptError",
    "ConfigError",
    "TaskError",
    "SpecError",
    "CompileError",
    "RunError",
    "LLMError",
    "BudgetExceeded",
    "InternalError",
    "is_bug",
    "did_you_mean",
]

import difflib
import os
from collections.abc import Iterable


class GraphoptError(Exception):
    """Root of every error graphopt raises on purpose."""


class ConfigError(GraphoptError):
    """A setting, argument or file the user gave cannot be used."""


class TaskError(GraphoptError):
    """A task cannot be found or its data cannot be loaded."""


class SpecError(GraphoptError):
    """A graph spec is invalid. `problems` lists every problem found, each naming its node or edge."""

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class CompileError(GraphoptError):
    """A valid spec could not be turned into a runnable graph."""


class RunError(GraphoptError):
    """Something failed while a graph or a search was running."""


class LLMError(GraphoptError):
    """A model call failed for good.

    Whether a command goes on depends on `fatal`: a fatal error (bad key, no access, unknown
    model, a request the provider refuses: a 4xx status that is not retried) would fail every
    later call the same way, so it stops the command at its first occurrence; any other error
    already outlived its retries, and the example it hit is recorded as errored (see
    `graphopt.program.Evaluation.errors`), to be held against the command's `--max-error-rate`.

    Attributes:
        provider: the litellm provider (e.g. "openai", "graphopt-local").
        model: the model string of the call.
        status: the HTTP status when there was one.
        reason: the provider's message, shortened.
        retryable: whether retrying could have helped (it was retried already).
        retry_after: seconds the provider asked to wait, if it said.
        fatal: a refusal the retries cannot change: the command must stop (see above).
        fix: what the user can do about a fatal error ("" when there is nothing to say).
    """

    def __init__(
        self,
        reason: str,
        *,
        provider: str = "",
        model: str = "",
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ):
        self.provider = provider
        self.model = model
        self.status = status
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.fix = _fix(provider, model, status) if self.fatal else ""
        named = ", ".join(part for part in (provider if provider and provider != model else "",
                                            f"status {status}" if status else "") if part)
        where = (model or provider or "the model") + (f" ({named})" if named else "")
        super().__init__(f"model call to {where} failed: {reason}" + (f"; {self.fix}" if self.fix else ""))

    @property
    def fatal(self) -> bool:
        """True for a refusal retrying cannot help (a 4xx status not retried), so the command stops.

        An error without a status that was not retried (an unexpected exception in a provider
        library) is not fatal: it is counted against the command's error rate like any other.
        """
        return not self.retryable and self.status is not None and 400 <= self.status < 500


def _fix(provider: str, model: str, status: int | None) -> str:
    """The advice a fatal error ends with, by HTTP status."""
    key = f"{(provider or 'the provider').upper().replace('-', '_')}_API_KEY"
    flag = "--program-model/--optimizer-model/--meta-model"
    if status == 401:
        return f"check {key} (or the api_key_env setting of the model's level)"
    if status == 403:
        return f"the key has no access to {model or 'this model'}: check {key}'s permissions or use another model ({flag})"
    if status == 404:
        return f"check the model name {model!r} ({flag}) and the provider's api_base"
    if status in (400, 413, 422) and provider != "local":  # the local provider's reason says how to fit
        return "the provider refused the request: shorten the prompt (context length) or check the model's settings"
    return ""


class BudgetExceeded(GraphoptError):
    """A cap on calls, tokens or dollars was reached; work done so far is kept."""

    def __init__(self, what: str):
        self.what = what
        super().__init__(f"budget reached: {what}")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Returns ' (did you mean X?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=2, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


class InternalError(RunError):
    """An exception raised inside graphopt's own code that it did not raise on purpose: a bug.

    It stops the command (a search stays resumable) instead of being recorded as a rejected
    graph. `details` holds the original traceback, written to the run's log, never shown as one.
    """

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def is_bug(exc: BaseException) -> bool:
    """True for an exception graphopt did not raise on purpose, raised from graphopt's own code
    (the innermost frame of its traceback is in the package, outside `graphopt.testing`).

    A user's metric, pipeline or operator raising is not a bug of graphopt, nor is any
    `GraphoptError`."""
    if isinstance(exc, GraphoptError) or not isinstance(exc, Exception):
        return False
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    path = tb.tb_frame.f_code.co_filename
    inside = os.path.abspath(path).startswith(_PACKAGE_DIR + os.sep)
    return inside and not os.path.abspath(path).startswith(os.path.join(_PACKAGE_DIR, "testing") + os.sep)

