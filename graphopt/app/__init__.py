"""The application layer: what the commands do, as use cases that take a request and return a report.

Each use case (`evaluate`, `optimize`, `search`, `study`) builds its task and models once from a
`TaskRequest` and a `ModelRequest`, checks everything it can before the first model call, runs,
writes its files and returns what happened. None prints: progress goes to an `on_event(kind,
data)` callback; the CLI parses flags into a request, runs the use case and prints the report.

Example:
    >>> from graphopt.app import EvalRequest, TaskRequest, evaluate
    >>> request = EvalRequest(TaskRequest("word_sorting", split_sizes="3,3,3"), limit=2)
    >>> evaluate(request).result.accuracy  # doctest: +SKIP
"""

from __future__ import annotations

__all__ = [
    "TaskRequest", "ModelRequest", "EvalRequest", "EvalReport", "evaluate", "OptimizeRequest",
    "OptimizeReport", "optimize", "SearchSizes", "PlanRequest", "SearchRequest", "SearchOutcome", "search", "StudyRequest", "StudyOutcome", "study",
]

from .evaluation import EvalReport, EvalRequest, evaluate
from .models import ModelRequest
from .optimization import OptimizeReport, OptimizeRequest, optimize
from .structure_search import PlanRequest, SearchOutcome, SearchRequest, SearchSizes, search
from .study_run import StudyOutcome, StudyRequest, study
from .task import TaskRequest
