"""The `study` use case: every (task, method, seed, program model) cell of a study file, then its tables."""

from __future__ import annotations

__all__ = ["StudyRequest", "StudyOutcome", "study", "estimate"]

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..aio import run_sync
from ..errors import ConfigError
from .events import OnEvent, ignore
from .executors import check_ray_address
from .models import Connect, ModelRequest
from .task import prompt_tokens

if TYPE_CHECKING:
    from ..study import StudySpec
    from ..study.report import Row
    from ..study.store import CellRecord


@dataclasses.dataclass(frozen=True)
class StudyRequest:
    """A study: its file, the models, where its cells run and where it writes.

    `out` None: studies/NAME. `executor`: (local or ray, the Ray address); `parallel` None: the
    executor's default (4 for API models locally). `store_url`: a database instead of out/study.sqlite.
    """

    study_file: Path
    models: ModelRequest = ModelRequest()
    out: Path | None = None
    resume: bool = False
    executor: tuple[str, str | None] = ("local", None)
    parallel: int | None = None
    store_url: str | None = None


@dataclasses.dataclass(frozen=True)
class StudyOutcome:
    """The study's cells as stored (done or not), its table's rows, its output files and its directory."""

    spec: StudySpec
    records: list[CellRecord]
    rows: list[Row]
    paths: dict[str, Path]
    out: Path


def estimate(study_file: Path) -> tuple[StudySpec, list[tuple[Any, dict]], dict[str, dict[str, int]]]:
    """The study, each cell's upper estimate per level and the total, after checking every task and graph.

    Raises:
        ConfigError, TaskError: a bad study file, task or graph.
    """
    from ..study import load_study
    from ..study.estimate import estimate_study
    from ..study.runner import check_study

    spec = load_study(study_file)
    check_study(spec)
    rows, total = estimate_study(spec, _prompt_tokens(spec))
    return spec, rows, total


def _prompt_tokens(spec: StudySpec) -> dict[str, int]:
    """Per task: about how many tokens its seed program's prompt has."""
    from ..tasks import get_task

    return {entry.name: prompt_tokens(get_task(entry.name, seed=spec.seeds[0], **entry.options())) for entry in spec.tasks}


def study(request: StudyRequest, *, connect: Connect | None = None, on_event: OnEvent = ignore) -> StudyOutcome:
    """Runs the study's cells (those not done, with `resume`), then writes study.csv, .json and .html.

    Args:
        request: what to run.
        connect: opens the LM (default `ModelRequest.connect`).
        on_event: told ("cells", {"spec", "cells", "out"}) once the executor is up, then the
            study's own events (start, cell, end).

    Raises:
        ConfigError: a bad study file or executor, or a study already in the store without `resume`.
    """
    from ..search.executor import default_parallel
    from ..study import LocalCells, RayCells, StudyStore, load_study, run_study, summarize, write_outputs

    r = request
    spec = load_study(r.study_file)
    out = r.out or Path("studies") / spec.name
    name, address = r.executor
    if name not in ("local", "ray"):
        raise ConfigError(f"unknown --executor {name!r}: use local or ray")
    if address and name != "ray":
        raise ConfigError("--ray-address needs --executor ray")
    check_ray_address(address)
    store = StudyStore(r.store_url, spec.name) if r.store_url else StudyStore.in_dir(out, spec.name)
    try:
        if store.exists() and not r.resume:
            raise ConfigError(f"{r.store_url or out} already holds study {spec.name!r}: add --resume to finish it, or choose another --out")
        lm = (connect or ModelRequest.connect)(r.models)
        if name == "ray":
            cells = RayCells(lm.config, address=address, parallel=r.parallel)
        else:
            cells = LocalCells(lm.config, lm.transport, r.parallel or min(4, default_parallel(lm)))
        on_event("cells", {"spec": spec, "cells": cells, "out": out})
        out.mkdir(parents=True, exist_ok=True)
        try:
            run_sync(run_study(spec, store, cells, out.resolve(), on_event=on_event))
        finally:
            cells.close()
            lm.close()
        records = store.cells()
    finally:
        store.close()
    paths = write_outputs(spec, records, out)
    return StudyOutcome(spec, records, summarize(spec, records), paths, out)
