"""Task selection options shared by eval, optimize and search."""

from __future__ import annotations

__all__ = ["TaskName", "Source", "Difficulty", "Seed", "InputKey", "TargetKey", "build_task", "load_program"]

import inspect
import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from ..errors import ConfigError, TaskError
from ..tasks import Task, get_task
from ..tasks.registry import _REGISTRY, task_names
from ..types import Program

TaskName = Annotated[str, typer.Option("--task", "-t", help="Task name (see `graphopt tasks`).")]
Source = Annotated[
    str | None,
    typer.Option("--source", help="Where the data comes from: generated, official, or a file path."),
]
Difficulty = Annotated[
    str | None, typer.Option("--difficulty", help="Generator difficulty: official, medium, easy.")
]
Seed = Annotated[int, typer.Option("--seed", help="Seed for data generation and splits.")]
InputKey = Annotated[str | None, typer.Option("--input-key", help="Input column of a custom data file.")]
TargetKey = Annotated[str | None, typer.Option("--target-key", help="Target column of a custom data file.")]


def build_task(name: str, **options) -> Task:
    """get_task with the options the task's builder accepts; an option it does not take is an error."""
    options = {k: v for k, v in options.items() if v is not None}
    task_names()  # loads the built-in tasks
    factory = _REGISTRY.get(name)
    if factory is not None:
        params = inspect.signature(factory.build).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        for key in list(options):
            if key not in params and not takes_any:
                if key == "seed":
                    options.pop(key)
                    continue
                flag = "--" + key.replace("_", "-")
                raise ConfigError(f"task {name!r} does not take {flag}: drop it")
    try:
        return get_task(name, **options)
    except (TypeError, ValueError, ValidationError) as exc:
        raise TaskError(f"bad option for task {name!r}: {exc}") from exc


def load_program(path: Path | None, task: Task) -> Program:
    """The program in a JSON file (a Program, or a file with a "program" key), or the task's seed."""
    if path is None:
        return task.seed_program
    if not path.exists():
        raise ConfigError(f"program file not found: {path}")
    if path.is_dir():
        raise ConfigError(f"--program {path} is a directory: give a program JSON file (e.g. {path / 'program.json'})")
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "program" in data:
            data = data["program"]
        return Program.model_validate(data)
    except OSError as exc:
        raise ConfigError(f"cannot read program file {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, ValidationError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{path} is not a program file ({first}): use a file written by graphopt optimize") from exc
