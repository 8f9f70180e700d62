"""Any Hugging Face Hub dataset as a task ("hub"), and `load_hub_rows`, the Hub reader every loader uses.

`datasets` is imported only when rows are read.

Example:
    >>> from graphopt.tasks import get_task
    >>> task = get_task("hub", dataset_id="openai/gsm8k", config="main", input_key="question", target_key="answer")  # doctest: +SKIP
"""

from __future__ import annotations

__all__ = ["load_hub_rows", "hub_task"]

from collections.abc import Iterable
from typing import Any

from ..errors import TaskError
from .base import DEFAULT_SIZES, Task
from .custom import Columns, Splits, _one_line, custom_task
from .registry import register_task


def load_hub_rows(
    dataset_id: str, config: str | None = None, split: str = "train", *, fix: str = ""
) -> list[dict[str, Any]]:
    """The rows of one split of a Hugging Face Hub dataset, through `datasets.load_dataset`.

    Args:
        dataset_id: e.g. "lukaemon/bbh".
        config: the dataset's configuration (subset) name, if it has several.
        split: e.g. "train", "test".
        fix: what the user can do instead, appended to the error (default: pass a local file).

    Raises:
        TaskError: `datasets` is missing, or the dataset could not be loaded (offline, gated, unknown).
    """
    fix = fix or "pass a local file with source=PATH"
    where = _hub_label(dataset_id, config, split)
    try:
        from datasets import load_dataset
    except ImportError as exc:
        raise TaskError(f"loading {where} needs the `datasets` package (pip install datasets); or {fix}") from exc
    try:
        rows = load_dataset(dataset_id, config, split=split)
        return [dict(row) for row in rows]
    except Exception as exc:  # noqa: BLE001  (offline, gated, unknown config: all end the same way)
        reason = _one_line(f"{type(exc).__name__}: {exc}")
        raise TaskError(f"could not load {where} from the Hugging Face Hub ({reason}); {fix}") from exc


def _hub_label(dataset_id: str, config: str | None, split: str) -> str:
    """How messages and task sources name one split of a Hub dataset."""
    return dataset_id + (f" ({config})" if config else "") + f" split {split!r}"


@register_task(
    "hub", "any Hugging Face Hub dataset (--source OWNER/NAME, --input-key, --target-key; config=, split= in Python)",
    source="dataset_id",
)
def hub_task(
    *,
    dataset_id: str | None = None,
    config: str | None = None,
    split: str = "train",
    input_key: str = "input",
    target_key: str = "target",
    sizes: Iterable[int] = DEFAULT_SIZES,
    seed: int = 0,
    shuffle: bool = True,
    input_template: str | None = None,
    rubric: str | None = None,
) -> Task:
    """A task from one split of a Hub dataset, scored by exact match on the first line.

    Args:
        dataset_id: e.g. "openai/gsm8k" (the CLI's --source).
        config: the dataset configuration (subset), e.g. "main".
        split: the split to read; it is then cut into train/val/test.
        input_key, target_key, input_template, sizes, seed, shuffle, rubric: as for the "file" task.

    Raises:
        TaskError: no dataset id, the dataset cannot be loaded (offline, gated), or a missing column.
    """
    if not dataset_id:
        raise TaskError("task 'hub' needs a dataset: --source OWNER/NAME (dataset_id= in Python)")
    rows = load_hub_rows(dataset_id, config, split, fix="check the id, config and split, or use the 'file' task")
    where = _hub_label(dataset_id, config, split)
    if not rows:
        raise TaskError(f"{where} has no examples")
    prefix = dataset_id.replace("/", "_") + (f"-{config}" if config else "") + f"-{split}"
    return custom_task(
        "hub", rows, Columns(input_key, target_key, input_template), Splits(sizes, seed, shuffle),
        where=where, id_prefix=prefix, rubric=rubric,
    )
