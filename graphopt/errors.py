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
    "did_you_mean",
]

import difflib
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

    Attributes:
        provider: the litellm provider (e.g. "openai", "graphopt-local").
        status: the HTTP status when there was one.
        reason: the provider's message, shortened.
        retryable: whether retrying could have helped (it was retried already).
        retry_after: seconds the provider asked to wait, if it said.
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
        where = f"{model or provider}" + (f" (status {status})" if status else "")
        super().__init__(f"model call to {where} failed: {reason}")


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
