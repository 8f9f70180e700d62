"""A command's task: its options as one request, built once into the task and the program it starts from."""

from __future__ import annotations

__all__ = [
    "TaskRequest", "build_task", "task_and_program", "starting_program", "unescape", "describe_task", "calling_levels",
    "parse_split_sizes", "prompt_tokens",
]

import dataclasses
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError, TaskError
from ..tasks import Task, get_task
from ..tasks.registry import _REGISTRY, source_option, task_names
from ..program.files import read_program
from ..program.model import Program


@dataclasses.dataclass(frozen=True)
class TaskRequest:
    """The task options of a command (--task, --source, ..., --program, --pipeline), as given.

    Example:
        >>> task, program = TaskRequest("word_sorting", difficulty="easy").build()
        >>> task.name
        'word_sorting'
    """

    name: str
    source: str | None = None
    difficulty: str | None = None
    seed: int = 0
    input_key: str | None = None
    target_key: str | None = None
    input_template: str | None = None
    instruction: str | None = None
    output_format: str | None = None
    extract: str | None = None
    metric: str | None = None
    answer_tokens: int | None = None
    split_sizes: str | None = None
    pipeline: str | None = None
    program: str | None = None

    @classmethod
    def pick(cls, options: Mapping[str, Any], **changes: Any) -> TaskRequest:
        """The request from a command's options (its `locals()`: `task` is the name; others are ignored)."""
        fields = {f.name for f in dataclasses.fields(cls)} - {"name"}
        values = {key: options[key] for key in fields if key in options}
        return cls(name=options["task"], **{**values, **changes})

    def build(self) -> tuple[Task, Program]:
        """The task and the program a run starts from.

        Raises:
            ConfigError, TaskError: an option the task does not take, bad split sizes, a bad rule
                or file (one line).
        """
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in ("name", "program", "pipeline", "split_sizes"):
            options.pop(key)
        return task_and_program(
            self.name, program=self.program, pipeline=self.pipeline, sizes=parse_split_sizes(self.split_sizes), **options
        )


def parse_split_sizes(text: str | None) -> tuple[int, int, int] | None:
    """"30,40,100" -> (30, 40, 100); None for None.

    Raises:
        ConfigError: not three whole numbers, train or val below 1, or one above a million.
    """
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ConfigError(f"--split-sizes {text!r}: write TRAIN,VAL,TEST as three whole numbers, e.g. 30,40,100")
    sizes = tuple(int(p) for p in parts)
    if sizes[0] < 1 or sizes[1] < 1 or max(sizes) > 1_000_000:
        raise ConfigError(f"--split-sizes {text!r}: train and val need at least 1 example, and each at most 1000000")
    return sizes  # type: ignore[return-value]


def unescape(text: str | None) -> str | None:
    """A command-line text with "\\n" and "\\t" turned into a line break and a tab (shells pass them as typed)."""
    if text is None:
        return None
    return text.replace("\\n", "\n").replace("\\t", "\t")


def build_task(
    name: str,
    *,
    instruction: str | None = None,
    output_format: str | None = None,
    extract: str | None = None,
    metric: str | None = None,
    answer_tokens: int | None = None,
    **options,
) -> Task:
    """get_task with the options the task's builder accepts; an option it does not take is an error.

    `source` fills the option the task registered for it (`path` for "file", `dataset_id` for
    "hub"). `instruction` and `output_format` (the seed program's text, `Task.with_seed_text`) and
    `extract`, `metric` and `answer_tokens` (`Task.with_answer`) apply to any task; the rules are
    checked (names, a user metric's import and signature) before anything runs. "\\n" in the
    texts and the input template is a line break (`unescape`).

    Example:
        >>> build_task("word_sorting", instruction="Sort them.", sizes=(3, 3, 3)).seed_program.instruction
        'Sort them.'
    """
    options["input_template"] = unescape(options.get("input_template"))
    options = {k: v for k, v in options.items() if v is not None}
    task_names()  # loads the built-in tasks
    if "source" in options:
        options[source_option(name)] = options.pop("source")
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
    task = task.with_seed_text(instruction=unescape(instruction), output_format=unescape(output_format))
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
    saved = _saved_io(program, pipeline)
    notes = []
    if saved is not None:  # a program file says how it was read and scored: use that unless told otherwise
        for key, rule in (("metric", saved.metric), ("extract", saved.extract)):
            if rule and options.get(key) is None:
                options[key] = rule
                notes.append(f"{key} {rule} (from the program file)")
            elif rule and options.get(key) != rule:
                notes.append(f"--{key} {options[key]} (the program file says {rule})")
    built = build_task(name, **options)
    task = dataclasses.replace(built, notes=(*built.notes, *notes))
    return task, starting_program(program, task, pipeline)


def _saved_io(program: str | None, pipeline: str | None):  # noqa: ANN202
    """The `io` of a program file (None: no file, a shape, or a file that records none)."""
    from ..program.shapes import SHAPES

    if program is None or pipeline or (not Path(program).exists() and program in SHAPES):
        return None
    return read_program(program, named="--program").io


def describe_task(task: Task) -> str:
    """One line saying how a command reads and scores: splits, metric, extractor, and where each came from."""
    from ..tasks.answers import EXTRACTORS, parse_rule

    rule = task.extract_rule or "the task's own rule"
    name = parse_rule(task.extract_rule)[0] if task.extract_rule else ""
    doc = EXTRACTORS[name].doc if name in EXTRACTORS else ""
    parts = [
        f"{task.name}: {len(task.train)} train / {len(task.val)} val / {len(task.test)} test",
        f"metric {task.metric_rule or 'exact'}",
        f"answers read by {rule}" + (f" ({doc})" if doc else ""),
    ]
    if task.input_template:
        parts.append(f"input {task.input_template!r}")
    line = "; ".join(parts)
    return line + (f"; {', '.join(task.notes)}" if task.notes else "")


def prompt_tokens(task: Task) -> int:
    """About how many tokens the seed program's prompt has (a quarter of its characters, on 5 train examples)."""
    sample = task.train[:5]
    chars = sum(sum(len(m["content"]) for m in task.seed_program.messages(ex.input)) for ex in sample)
    return max(1, chars // max(len(sample), 1) // 4)


def calling_levels(task: Task, *levels: str) -> tuple[str, ...]:
    """`levels` and the levels the task's metric calls (judge), each once, for `make_lm(levels=...)`."""
    return tuple(dict.fromkeys((*levels, *task.metric_levels)))


def starting_program(path: Path | str | None, task: Task, pipeline: str | None = None) -> Program:
    """The program `path` names: a built-in shape (direct, cot, reason_then_answer) of the task's
    seed program, a JSON file (a Program, or a file with a "program" key), or, for None, the seed.

    With `pipeline` ("module:function"), the program runs that function, its components the
    file's steps (or, without a file, the module's COMPONENTS).

    Raises:
        ConfigError: no such shape or file, a file that is not a program (naming what is wrong),
            or a pipeline that cannot be imported or has the wrong signature.
    """
    from ..program.pipeline import pipeline_program
    from ..program.shapes import SHAPES, make_shape

    if pipeline:
        base = None if path is None else read_program(path, named="--program")
        return task.with_seed_program(pipeline_program(pipeline, base)).seed_program
    if path is None:
        return task.seed_program
    path = Path(path)
    if not path.exists() and str(path) in SHAPES:
        return make_shape(str(path), task.seed_program)
    return task.with_seed_program(read_program(path, named="--program")).seed_program  # fed and read by this task


