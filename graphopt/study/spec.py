"""What a study file says, and the grid of cells it stands for.

A study is tasks x methods x seeds x program models, plus transfer rows: a search on task A
whose winning graph is then applied to task B, beside B's own baselines and search. Each cell
is one plain-data unit (`Cell`) with a stable key, so a study store can tell which are done.

Example study file (see examples/study.yaml):

    name: demo
    tasks:
      - {name: word_sorting, difficulty: easy, sizes: [12, 10, 10]}
    methods:
      - {name: zero-shot, kind: zero-shot}
      - {name: few-shot, kind: few-shot, demos: 3}
      - {name: tgd, kind: graph, graph: tgd}
      - {name: search, kind: search, budget: tiny}
    seeds: [0, 1]
    program_models: [local/smollm2]
    baseline: zero-shot
    transfer:
      - {method: search, source: word_sorting, target: dyck_languages}
"""

from __future__ import annotations

__all__ = ["StudySpec", "TaskEntry", "MethodEntry", "TransferEntry", "CellSizes", "Cell", "load_study", "METHOD_KINDS"]

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError, did_you_mean
from ..sizes import LoopSizes

METHOD_KINDS = ("zero-shot", "few-shot", "graph", "search")


class TaskEntry(BaseModel):
    """One task and the options its builder takes (difficulty, sizes, source, ...); the seed comes from the study."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    difficulty: str | None = None
    sizes: tuple[int, int, int] | None = None
    source: str | None = None

    def options(self) -> dict[str, Any]:
        """The builder's options; `source` fills the option the task registered for it (`path` for "file")."""
        from ..tasks.registry import source_option

        options = {k: v for k, v in self.model_dump(exclude={"name"}).items() if v is not None}
        if "source" in options:
            options[source_option(self.name)] = options.pop("source")
        return options


class MethodEntry(BaseModel):
    """A row of the table: a baseline, a graph (built-in name or file) run by the inner loop, or a search preset.

    `budget` names a search preset (tiny, small, medium) and `settings` overrides its fields
    (generations, children, val_limit, seeds, ...), as the `graphopt search` flags do.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    kind: Literal["zero-shot", "few-shot", "graph", "search"]
    graph: str | None = None
    budget: str = "tiny"
    settings: dict[str, Any] = Field(default_factory=dict)
    demos: int = Field(3, ge=1)

    @model_validator(mode="after")
    def _graph_needs_a_graph(self) -> MethodEntry:
        if self.kind == "graph" and not self.graph:
            raise ValueError(f"method {self.name!r} is a graph: give graph: NAME or FILE")
        return self


class TransferEntry(BaseModel):
    """Search (method, a search) on `source`, apply its winning graph on `target`."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    method: str
    source: str
    target: str


class CellSizes(LoopSizes):
    """The inner loop's sizes for graph and transfer cells (the study file's `loop`), and the test
    examples every cell is scored on."""

    steps: int = Field(2, ge=1)
    minibatch: int = Field(3, ge=1)
    val_limit: int = Field(10, ge=1)
    test_limit: int = Field(20, ge=1)


class StudySpec(BaseModel):
    """A whole study file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = "study"
    tasks: list[TaskEntry]
    methods: list[MethodEntry]
    seeds: list[int] = Field(default_factory=lambda: [0])
    program_models: list[str | None] = Field(default_factory=lambda: [None])
    baseline: str | None = None
    loop: CellSizes = Field(default_factory=CellSizes)
    transfer: list[TransferEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _names_resolve(self) -> StudySpec:
        methods = {m.name: m for m in self.methods}
        tasks = [t.name for t in self.tasks]
        if len(methods) != len(self.methods):
            raise ValueError("two methods share a name: give each its own name")
        if self.baseline is not None and self.baseline not in methods:
            raise ValueError(f"baseline {self.baseline!r} is not a method{did_you_mean(self.baseline, methods)}")
        for row in self.transfer:
            if row.method not in methods or methods[row.method].kind != "search":
                raise ValueError(f"transfer method {row.method!r} must name a search method{did_you_mean(row.method, methods)}")
            for end in (row.source, row.target):
                if end not in tasks:
                    raise ValueError(f"transfer task {end!r} is not one of the study's tasks{did_you_mean(end, tasks)}")
        return self

    def task(self, name: str) -> TaskEntry:
        return next(t for t in self.tasks if t.name == name)

    def method(self, name: str) -> MethodEntry:
        return next(m for m in self.methods if m.name == name)

    def cells(self) -> list[Cell]:
        """Every cell: the grid first (task, method, model, seed order), then the transfer cells."""
        grid = [
            Cell(task.name, method.name, seed, model)
            for task in self.tasks
            for method in self.methods
            for model in self.program_models
            for seed in self.seeds
        ]
        moved = [
            Cell(row.target, f"{row.method} from {row.source}", seed, model, source=row.source, source_method=row.method)
            for row in self.transfer
            for model in self.program_models
            for seed in self.seeds
        ]
        return grid + moved


@dataclass(frozen=True)
class Cell:
    """One unit of a study: a method on a task with one seed and program model.

    A transfer cell (`source` set) applies the graph that the search `source_method` found on
    `source` (same seed and model) to `task`.
    """

    task: str
    method: str
    seed: int
    model: str | None = None
    source: str | None = None
    source_method: str | None = None

    @property
    def key(self) -> str:
        return f"{self.task}|{self.method}|{self.model or 'default'}|seed {self.seed}"

    @property
    def depends_on(self) -> str | None:
        """The key of the search cell whose winner a transfer cell applies."""
        if self.source is None:
            return None
        return Cell(self.source, self.source_method or "", self.seed, self.model).key


def load_study(path: str | Path) -> StudySpec:
    """Reads and checks a study file (YAML or JSON).

    Raises:
        ConfigError: no such file, not YAML, or a setting that is wrong (one line naming it).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no study file {path}: give the path of a study YAML file (see examples/study.yaml)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({' '.join(str(exc).split())[:160]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping with tasks and methods")
    try:
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise ConfigError(f"{path}: {where}: {first['msg'].removeprefix('Value error, ')}") from None
