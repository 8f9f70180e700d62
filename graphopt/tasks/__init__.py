"""Tasks: data splits, seed programs, answer extraction and metrics, registered by name."""

from .base import DEFAULT_SIZES, SPLITS, Task, split_examples
from .metrics import exact_match
from .registry import get_task, register_task, task_names

__all__ = ["Task", "get_task", "register_task", "task_names", "exact_match", "split_examples", "SPLITS", "DEFAULT_SIZES"]
