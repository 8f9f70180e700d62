"""The run store: candidates, evaluations, costs, lineage and events of a search, on SQLAlchemy."""

from ..status import Status
from .models import SCHEMA_VERSION
from .run_store import (
    SPEND_LEVELS,
    ORIGINS,
    RUN_STATUSES,
    STORE_FILENAME,
    CandidateRow,
    EvaluationRow,
    EventRow,
    RunRow,
    RunStore,
    strip_secrets,
)
from .shared import RunDir

__all__ = [
    "RunStore",
    "RunDir",
    "RunRow",
    "CandidateRow",
    "EvaluationRow",
    "EventRow",
    "ORIGINS",
    "RUN_STATUSES",
    "SPEND_LEVELS",
    "STORE_FILENAME",
    "SCHEMA_VERSION",
    "strip_secrets",
    "Status",
]
