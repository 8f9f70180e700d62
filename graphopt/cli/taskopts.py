"""Task selection options shared by eval, optimize and search."""

from __future__ import annotations

__all__ = [
    "TaskName", "Source", "Difficulty", "Seed", "InputKey", "TargetKey", "InputTemplate", "Instruction",
    "OutputFormat", "Extract", "Metric", "AnswerTokens", "Pipeline", "build_task", "task_and_program", "calling_levels",
    "load_program", "read_program_file", "unescape",
]

import inspect
import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from ..errors import ConfigError, TaskError, did_you_mean
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
InputTemplate = Annotated[
    str | None,
    typer.Option("--input-template", help='Input of a custom data file over several columns, e.g. "Question: {question}\\nChoices: {choices}" (\\n is a line break).'),
]
Instruction = Annotated[str | None, typer.Option("--instruction", help="Instruction of a custom task's seed program.")]
OutputFormat = Annotated[str | None, typer.Option("--output-format", help="Output format of a custom task's seed program.")]
Extract = Annotated[
    str | None,
    typer.Option("--extract", help="How the answer is read from the output: whole, first_line, last_line, marker[:TEXT], "
                 "regex:PATTERN, json[:FIELD], letter, last_letter, bbh, bbh_spaced (default: the task's)."),
]
Metric = Annotated[
    str | None,
    typer.Option("--metric", help="How an answer is scored: exact, normalized_exact, contains, numeric[:TOLERANCE], "
                 "token_f1, choice_letter, regex, judge[:RUBRIC_FILE] (the --judge-model scores it), "
                 "or MODULE:FUNCTION (answer, example) -> float (default: the task's)."),
]
Pipeline = Annotated[
    str | None,
    typer.Option("--pipeline", metavar="MODULE:FUNCTION", help="Your own pipeline (components, example) -> output runs the program; "
                 "its components come from --program or the module's COMPONENTS."),
]
AnswerTokens = Annotated[
    int | None, typer.Option("--answer-tokens", min=1, help="Tokens the program may write per answer (default: the task's).")
]


def unescape(text: str | None) -> str | None:
    """A command-line text with "\\n" and "\\t" turned into a line break and a tab (shells pass them as typed)."""
    if text is None:
        return None
    return text.replace("\\n", "\n").replace("\\t", "\t")


def build_task(
    name: str, *, extract: str | None = None, metric: str | None = None, answer_tokens: int | None = None, **options
) -> Task:
    """get_task with the options the task's builder accepts; an option it does not take is an error.

    `extract`, `metric` and `answer_tokens` apply to any task (`Task.with_answer`); they are
    checked (names, a user metric's import and signature) before anything runs.
    """
    for key in ("input_template", "instruction", "output_format"):
        options[key] = unescape(options.get(key))
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
        task = get_task(name, **options)
    except (TypeError, ValueError, ValidationError) as exc:
        raise TaskError(f"bad option for task {name!r}: {exc}") from exc
    if extract is None and metric is None and answer_tokens is None:
        return task
    return task.with_answer(extract=extract, metric=metric, max_tokens=answer_tokens)


def task_and_program(
    name: str, *, program: str | None = None, pipeline: str | None = None, **options
) -> tuple[Task, Program]:
    """The task a command names, built from its task options, and the program it starts from.

    Args:
        name: the --task name.
        program: --program (a file or a shape; None: the task's seed program).
        pipeline: --pipeline MODULE:FUNCTION, run with the program's steps as its components.
        options: the other task options (--source, --metric, --input-template, ...), as
            `build_task` takes them.

    Raises:
        ConfigError, TaskError: an option the task does not take, a bad rule or file (one line).
    """
    task = build_task(name, **options)
    return task, load_program(program, task, pipeline)


def calling_levels(task: Task, *levels: str) -> tuple[str, ...]:
    """`levels` and the levels the task's metric calls (judge), each once, for `make_lm(levels=...)`."""
    return tuple(dict.fromkeys((*levels, *task.metric_levels)))


def load_program(path: Path | str | None, task: Task, pipeline: str | None = None) -> Program:
    """The program `path` names: a built-in shape (direct, cot, reason_then_answer) of the task's
    seed program, a JSON file (a Program, or a file with a "program" key), or, for None, the seed.

    With `pipeline` ("module:function"), the program runs that function, its components the
    file's steps (or, without a file, the module's COMPONENTS).

    Raises:
        ConfigError: no such shape or file, a file that is not a program (naming what is wrong),
            or a pipeline that cannot be imported or has the wrong signature.
    """
    from ..pipeline import pipeline_program
    from ..shapes import SHAPES, make_shape

    if pipeline:
        base = None if path is None else read_program_file(Path(path))
        return task.with_seed_program(pipeline_program(pipeline, base)).seed_program
    if path is None:
        return task.seed_program
    path = Path(path)
    if not path.exists() and str(path) in SHAPES:
        return make_shape(str(path), task.seed_program)
    return task.with_seed_program(read_program_file(path)).seed_program  # fed and read by this task


def read_program_file(path: Path) -> Program:
    """The program in a JSON file (a Program, or a file with a "program" key).

    Raises:
        ConfigError: no such file, a directory, or not a program (naming what is wrong).
    """
    from ..shapes import SHAPES

    if not path.exists():
        hint = "" if path.suffix else f"{did_you_mean(str(path), SHAPES)}: give a program file or a shape ({', '.join(SHAPES)})"
        raise ConfigError(f"program file not found: {path}{hint}")
    if path.is_dir():
        raise ConfigError(f"--program {path} is a directory: give a program JSON file (e.g. {path / 'program.json'})")
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and "program" in data:
            data = data["program"]
        return Program.model_validate(data)
    except OSError as exc:
        raise ConfigError(f"cannot read program file {path}: {exc.strerror or exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "the program"
        message = str(first.get("msg", "")).removeprefix("Value error, ")
        raise ConfigError(f"{path} is not a valid program ({where}: {message}): fix the file or use one written by graphopt optimize") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError(f"{path} is not a program file ({first}): use a file written by graphopt optimize") from exc
