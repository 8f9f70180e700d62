"""Your own tasks: examples from a JSONL/JSON/CSV file ("file"), and the task any rows make.

Also home of `read_records`, the reader every loader of a local file uses, and of `custom_task`,
which the "hub" task (`tasks.hub`) shares. The seed program's text is generic; `--instruction` and
`--output-format` (`Task.with_seed_text`) replace it.

A task with a rubric (`rubric=`, or a "rubric" next to the "examples" of a .json task file) is
scored by the LLM judge on the `judge` level (see `tasks.judge`) unless another metric is chosen.

Example:
    >>> from graphopt.tasks import get_task
    >>> task = get_task("file", path="qa.jsonl", input_key="question", target_key="answer")  # doctest: +SKIP
    >>> judged = get_task("file", path="qa.csv", rubric="Accept any correct city name.")  # doctest: +SKIP
"""

from __future__ import annotations

__all__ = ["Columns", "Splits", "read_records", "read_file_rubric", "records_to_examples", "custom_task", "file_task"]

import csv
import io
import json
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import TaskError, did_you_mean
from ..types import Example
from ..program.model import Program
from .base import DEFAULT_SIZES, Task, shuffled_split
from .metrics import exact_match
from .extract import extract_answer
from .registry import register_task

FILE_TYPES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv")

DEFAULT_INSTRUCTION = "Read the input and give the correct answer."
DEFAULT_OUTPUT_FORMAT = "Write only the final answer, on the first line."
MULTILINE_OUTPUT_FORMAT = "Write only the final answer, nothing before or after it."


@dataclass(frozen=True)
class Columns:
    """Which columns of a row make an example.

    Attributes:
        input_key: the column holding the input (ignored when `input_template` is given); the
            default "input" falls back to a usual name the rows have ("question", "prompt", "text").
        target_key: the column holding the expected answer (kept whole: multi-line targets stay);
            the default "target" falls back to "answer", "output" or "label".
        input_template: a `str.format` template over the columns, e.g.
            "Question: {question}\nChoices: {choices}"; a list or dict value is shown as JSON.
    """

    input_key: str = "input"
    target_key: str = "target"
    input_template: str | None = None

    def named(self, columns: Sequence[str]) -> Columns:
        """These columns with a default name replaced by the usual name `columns` has ("answer")."""
        return replace(
            self, input_key=_default_column(self.input_key, columns, _INPUT_NAMES),
            target_key=_default_column(self.target_key, columns, _TARGET_NAMES),
        )


@dataclass(frozen=True)
class Splits:
    """How examples are cut into train/val/test: the sizes, and the seed of the shuffle before (unless `shuffle` is False)."""

    sizes: Iterable[int] = DEFAULT_SIZES
    seed: int = 0
    shuffle: bool = True

    def cut(self, examples: Sequence[Example]) -> tuple[list[Example], list[Example], list[Example]]:
        return shuffled_split(examples, self.sizes, self.seed, shuffle=self.shuffle)  # type: ignore[arg-type]


def _one_line(text: object, limit: int = 160) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a local data file, as dicts.

    Reads .jsonl/.ndjson (one JSON object a line), .json (a list of objects, or an object with an
    "examples" list as in the BBH files), .csv and .tsv (with a header row).

    Raises:
        TaskError: the file is missing, of another type, empty, or not valid (naming the line).
    """
    path = Path(path)
    if path.is_dir():
        raise TaskError(f"{path} is a directory: give the data file itself (.jsonl, .json or .csv) with --source")
    if not path.is_file():
        raise TaskError(f"file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in FILE_TYPES:
        raise TaskError(f"unsupported file type {suffix or '(none)'!r} for {path}: use {', '.join(FILE_TYPES)}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TaskError(f"{path} is not UTF-8 text: {_one_line(exc)}") from exc
    if suffix in (".jsonl", ".ndjson"):
        records = _read_jsonl(text, path)
    elif suffix == ".json":
        records = _read_json(text, path)
    else:
        # StringIO keeps the line breaks inside quoted cells (multi-line questions).
        records = list(csv.DictReader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ","))
    if not records:
        raise TaskError(f"{path} has no examples")
    return records


def read_file_rubric(path: str | Path) -> str:
    """The "rubric" of a .json task file ({"examples": [...], "rubric": "..."}); "" when it has none.

    Raises:
        TaskError: the rubric is not a non-empty string.
    """
    path = Path(path)
    if path.suffix.lower() != ".json":
        return ""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return ""  # read_records reports what is wrong with the file
    rubric = data.get("rubric") if isinstance(data, dict) else None
    if rubric is None:
        return ""
    if not isinstance(rubric, str) or not rubric.strip():
        raise TaskError(f"{path}: \"rubric\" must be a non-empty text (what a correct answer must do)")
    return rubric.strip()


def _read_jsonl(text: str, path: Path) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{path} line {number} is not valid JSON: {exc.msg}") from exc
        if not isinstance(record, dict):
            raise TaskError(f"{path} line {number} is not a JSON object")
        records.append(record)
    return records


def _read_json(text: str, path: Path) -> list[dict[str, Any]]:
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TaskError(f"{path} is not valid JSON (line {exc.lineno}): {exc.msg}") from exc
    if isinstance(data, dict) and isinstance(data.get("examples"), list):
        data = data["examples"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise TaskError(f"{path}: expected a list of objects or an object with an 'examples' list")
    return data


def records_to_examples(
    records: Sequence[dict[str, Any]], keys: Columns, *, where: str, id_prefix: str
) -> list[Example]:
    """Examples from rows: `keys` says which columns give the input and the target; other fields go to meta.

    Args:
        records: the rows.
        keys: the input and target columns, or the input template.
        where: how messages name the data.
        id_prefix: example ids are "{id_prefix}-{row}".

    Raises:
        TaskError: a column is missing (listing the columns there are), a row has no value, or the
            template is malformed.
    """
    columns = list(records[0]) if records else []
    keys = keys.named(columns)
    input_key, target_key, input_template = keys.input_key, keys.target_key, keys.input_template
    fix = "pick the columns with --input-key/--target-key (input_key=/target_key= in Python)"
    needed = [target_key]
    if input_template is None:
        needed.insert(0, input_key)
    else:
        for name in template_columns(input_template):
            if name not in columns:
                raise TaskError(
                    f"--input-template names column {name!r}{did_you_mean(name, columns)}, not in {where}; "
                    f"columns are: {', '.join(map(str, columns))}"
                )
    for key in needed:
        if key not in columns:
            raise TaskError(f"column {key!r} not in {where}; columns are: {', '.join(map(str, columns))}; {fix}")
    used = set(needed) | (template_columns(input_template) if input_template else set())
    examples = []
    for i, record in enumerate(records):
        for key in needed:
            value = record.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                raise TaskError(f"row {i + 1} of {where} has no value for {key!r}")
        if input_template is None:
            text = str(record[input_key])
        else:
            text = input_template.format(**{k: _as_text(v) for k, v in record.items()})
        meta = {k: v for k, v in record.items() if k not in used and _is_plain(v)}
        examples.append(Example(id=f"{id_prefix}-{i}", input=text, target=_as_text(record[target_key]).strip(), meta=meta))
    return examples


_INPUT_NAMES = ("input", "question", "prompt", "text")
_TARGET_NAMES = ("target", "answer", "output", "label")


def _default_column(key: str, columns: Sequence[str], names: tuple[str, ...]) -> str:
    """`key`, or when it is the default name and absent, the first usual name the file has ("answer")."""
    if key != names[0] or key in columns:
        return key
    return next((name for name in names if name in columns), key)


def template_columns(template: str) -> set[str]:
    """The column names a `str.format` input template uses.

    Raises:
        TaskError: the template is malformed (an unmatched brace) or uses positional fields.
    """
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise TaskError(f"--input-template {template!r} is malformed ({exc}): write {{column}}, and {{{{ for a brace") from None
    if any(not name or name.isdigit() for name in fields):
        raise TaskError(f"--input-template {template!r} has a positional field: name a column, e.g. {{question}}")
    return {name.split(".")[0].split("[")[0] for name in fields}


def _as_text(value: object) -> str:
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _is_plain(value: object) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def custom_task(
    name: str, records: Sequence[dict[str, Any]], keys: Columns, splits: Splits, *, where: str, id_prefix: str,
    rubric: str | None = None,
) -> Task:
    """The task of the rows read from `where`: split, seed program and scoring shared by "file" and "hub".

    Answers are read like BBH's (after "So the answer is ", else the first line) unless a target
    spans several lines: then the whole output is the answer, and the seed program asks for
    nothing before or after it. Scored by exact match, or with a rubric by the LLM judge.
    """
    from .judge import JudgeMetric

    if rubric is not None and (not isinstance(rubric, str) or not rubric.strip()):
        raise TaskError(f"the rubric of {where} must be a non-empty text (what a correct answer must do)")
    rubric = (rubric or "").strip()
    examples = records_to_examples(records, keys, where=where, id_prefix=id_prefix)
    keys = keys.named(list(records[0]))
    multiline = any("\n" in ex.target for ex in examples)
    train, val, test = splits.cut(examples)
    program = Program(
        instruction=DEFAULT_INSTRUCTION, output_format=MULTILINE_OUTPUT_FORMAT if multiline else DEFAULT_OUTPUT_FORMAT
    )
    return Task(
        name=name,
        train=train,
        val=val,
        test=test,
        seed_program=program,
        extract=(lambda text: text.strip()) if multiline else extract_answer,
        metric=JudgeMetric(rubric=rubric) if rubric else exact_match,
        extract_rule="whole" if multiline else "answer_line",
        metric_rule="judge" if rubric else "exact",
        rubric=rubric,
        input_template=keys.input_template or "{" + keys.input_key + "}",
        description=f"examples from {where}",
        source=where,
        notes=(f"target column {keys.target_key!r}",),
    )


@register_task(
    "file", "your own examples from a .jsonl, .json or .csv file (--source FILE, --input-key, --target-key)", source="path"
)
def file_task(
    *,
    path: str | Path | None = None,
    input_key: str = "input",
    target_key: str = "target",
    sizes: Iterable[int] = DEFAULT_SIZES,
    seed: int = 0,
    shuffle: bool = True,
    input_template: str | None = None,
    rubric: str | None = None,
) -> Task:
    """A task from a local file of input/target rows, scored by exact match on the first line.

    The seed program's instruction and output format are generic; `Task.with_seed_text` (the
    CLI's --instruction/--output-format) replaces them.

    Args:
        path: a .jsonl/.ndjson, .json (list of objects, or BBH-style {"examples": [...]}), .csv or
            .tsv file (the CLI's --source).
        input_key, target_key, input_template: which columns make an example (see `Columns`):
            the input, the expected answer, or the input over several columns
            ("Question: {question}\nChoices: {choices}") in place of `input_key`.
        sizes: (train, val, test) sizes; fewer rows shrink the splits in proportion.
        seed: seed of the shuffle before splitting.
        shuffle: False keeps the file order (train first, then val, then test).
        rubric: what a correct answer must do; with one, the LLM judge scores answers (the
            `judge` metric on the judge level). A .json task file may hold it as "rubric".

    Raises:
        TaskError: no path, missing file, unsupported type, empty file, bad line or missing column.

    Example:
        >>> task = file_task(path="qa.csv", input_key="question", target_key="answer")  # doctest: +SKIP
    """
    if path is None:
        raise TaskError("task 'file' needs a file: --source FILE (path= in Python), a .jsonl, .json or .csv file")
    records = read_records(path)
    return custom_task(
        "file", records, Columns(input_key, target_key, input_template), Splits(sizes, seed, shuffle),
        where=str(path), id_prefix=Path(path).stem, rubric=rubric if rubric is not None else read_file_rubric(path) or None,
    )
