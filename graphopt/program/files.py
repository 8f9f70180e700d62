"""Reading a program file: a `Program`, or a file with a "program" key (optimize's program.json).

Example:
    >>> import json, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "p.json"
    >>> _ = path.write_text(json.dumps({"program": {"instruction": "Sort the words."}}))
    >>> read_program(path).instruction
    'Sort the words.'
"""

from __future__ import annotations

__all__ = ["read_program"]

import json
from pathlib import Path

from pydantic import ValidationError

from ..errors import ConfigError, did_you_mean
from .model import Program
from .shapes import SHAPES


def read_program(path: str | Path, *, named: str = "program file") -> Program:
    """The program in the JSON file `path`; `named` is how a message names it ("--program").

    Raises:
        ConfigError: no such file (with the shape it may have meant), a directory, not JSON, or
            not a valid program (naming the field and what is wrong with it).
    """
    path = Path(path)
    if not path.exists():
        hint = "" if path.suffix else f"{did_you_mean(str(path), SHAPES)}: give a program file or a shape ({', '.join(SHAPES)})"
        raise ConfigError(f"program file not found: {path}{hint}")
    if path.is_dir():
        raise ConfigError(f"{named} {path} is a directory: give a program JSON file (e.g. {path / 'program.json'})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read program file {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not a program file ({str(exc).splitlines()[0]}): use a file written by graphopt optimize") from None
    if isinstance(data, dict) and isinstance(data.get("program"), dict):
        data = data["program"]
    try:
        return Program.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "the program"
        message = str(first.get("msg", "")).removeprefix("Value error, ")
        raise ConfigError(f"{path} is not a valid program ({where}: {message}): fix the file or use one written by graphopt optimize") from None
