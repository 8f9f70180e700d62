"""Studies: tasks x methods x seeds x program models (plus transfer rows), each cell resumable."""

from .report import summarize, write_outputs
from .runner import LocalCells, RayCells, run_study
from .spec import Cell, StudySpec, load_study
from .store import StudyStore

__all__ = ["StudySpec", "Cell", "load_study", "StudyStore", "run_study", "LocalCells", "RayCells", "summarize", "write_outputs"]
