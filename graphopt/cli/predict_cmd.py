"""`graphopt predict` and `graphopt export`: use an optimized program outside graphopt.

Example:
    graphopt predict --program runs/x/best.program.json --input new.jsonl --out answers.jsonl
    graphopt export --program runs/x/best.program.json --format markdown
"""

from __future__ import annotations

__all__ = ["predict_command", "export_command", "read_inputs"]

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigError
from .app import app
from ..app.checks import check_cache_dir, check_error_rate, check_output
from .checks import DEFAULT_MAX_ERROR_RATE, MaxErrorRate
from .common import CacheDir, ConfigFile, NoCache, ProgramModel, SetOption, err_console, make_lm, run_async

ProgramFile = Annotated[Path, typer.Option("--program", help="A program file (best.program.json, optimize's program.json).")]
CHUNK = 8  # inputs per progress update


def read_inputs(source: str) -> list[Any]:
    """The records of a JSONL file ("-": standard input): one JSON object or string a line.

    Raises:
        ConfigError: the file is missing or a line is not JSON (naming the line).
    """
    if source == "-":
        text = sys.stdin.read()
        where = "standard input"
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"input file not found: {path}: give a JSONL file or - for standard input")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}") from None
        where = str(path)
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{where} line {number} is not JSON ({exc.msg}): write one JSON object or string a line") from None
    if not records:
        raise ConfigError(f"{where} has no inputs")
    return records


@app.command("predict")
def predict_command(
    program: ProgramFile,
    input_source: Annotated[str, typer.Option("--input", help="JSONL inputs (objects or strings), or - for standard input.")],
    out: Annotated[Path | None, typer.Option("--out", help="Write the answers here as JSONL (default: standard output).")] = None,
    program_model: ProgramModel = None,
    cache_dir: CacheDir = None,
    no_cache: NoCache = False,
    config_file: ConfigFile = None,
    overrides: SetOption = None,
    max_error_rate: MaxErrorRate = DEFAULT_MAX_ERROR_RATE,
    answer_field: Annotated[str, typer.Option("--answer-field", help="Field the answer is written to (the raw output goes to FIELD_output, or output for the default); an input that already has it is refused, so a gold label is never overwritten.")] = "answer",
) -> None:
    """Run a saved program on new inputs: JSONL in, JSONL out (each input with "answer" and "output").

    An object input is read by the program's input template (its task's, e.g. "Question:
    {question}"), or its "input" field; a string input is the input. Progress goes to stderr.
    """
    from ..program.predict import Runner, read_program, record_input
    from ..program.run import error_tally, run_program
    from ..types import Example
    from .progress import Progress

    if out is not None:
        check_output(out, "--out", directory=False)
    the_program = read_program(program)
    records = read_inputs(input_source)
    written = _written_fields(answer_field)
    _check_no_clash(records, written)
    examples = [
        Example(id=str(i), input=_input(record_input, r, the_program, i), target="") for i, r in enumerate(records)
    ]
    lm = make_lm(program_model, config_file=config_file, overrides=overrides, cache_dir=cache_dir, no_cache=no_cache,
                 levels=("program",))
    runner = Runner(the_program, lm)
    progress = Progress(len(examples), what="inputs", stream=sys.stderr)
    traces = []
    try:
        check_cache_dir(lm)
        with error_tally() as tally:
            for start in range(0, len(examples), CHUNK):
                chunk = examples[start : start + CHUNK]
                traces += run_async(run_program(the_program, chunk, runner.task, lm))
                _show(progress, len(traces), lm.ledger.to_dict())
    finally:
        progress.close()
        lm.close()
    check_error_rate(tally, max_error_rate)
    lines = []
    for record, trace in zip(records, traces):
        row = dict(record) if isinstance(record, dict) else {"input": record}
        row[written[0]], row[written[1]] = trace.answer, trace.output
        if trace.error:
            row[written[2]] = trace.error
        lines.append(json.dumps(row, ensure_ascii=False))
    text = "\n".join(lines) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)
        except OSError as exc:
            raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
        err_console.print(f"wrote {len(lines)} answers to {out}")


def _written_fields(answer_field: str) -> tuple[str, str, str]:
    """The answer, output and error fields predict adds to each record."""
    if not answer_field.strip():
        raise ConfigError("--answer-field must name a field, e.g. --answer-field prediction")
    if answer_field == "answer":
        return "answer", "output", "error"
    return answer_field, f"{answer_field}_output", f"{answer_field}_error"


def _check_no_clash(records: list[Any], fields: tuple[str, ...]) -> None:
    """Refuses inputs that already have a field predict writes: their value (a gold label) would be lost."""
    for i, record in enumerate(records, 1):
        if isinstance(record, dict):
            clash = next((f for f in fields if f in record), None)
            if clash is not None:
                raise ConfigError(
                    f"input {i} already has a field {clash!r}, which predict would overwrite: "
                    f"write the answers elsewhere with --answer-field, e.g. --answer-field prediction"
                )


def _show(progress: Any, done: int, usage: dict[str, Any]) -> None:
    """The progress line after `done` inputs, with the run's tokens and dollars so far."""
    progress.done = done
    for level, data in (usage.get("levels") or {}).items():
        progress.tokens[level] = data.get("tokens", 0)
    progress.dollars = (usage.get("total") or {}).get("cost", 0.0)
    progress.show()


def _input(read: Any, record: Any, program: Any, index: int) -> str:
    from ..program.model import ProgramIO

    try:
        return read(record, program.io or ProgramIO())
    except ConfigError as exc:
        raise ConfigError(f"input {index + 1}: {exc}") from None


@app.command("export")
def export_command(
    program: ProgramFile,
    fmt: Annotated[str, typer.Option("--format", help="messages (JSON chat messages), text or markdown.")] = "text",
    out: Annotated[Path | None, typer.Option("--out", help="Write here (default: standard output).")] = None,
) -> None:
    """Write a program's prompt to paste elsewhere, with its answer marker, extraction rule and stop strings."""
    from ..program.export import export_program
    from ..program.predict import read_program

    text = export_program(read_program(program), fmt)
    if out is None:
        sys.stdout.write(text)
        return
    check_output(out, "--out", directory=False)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
    err_console.print(f"wrote {out} ({fmt})", markup=False)
