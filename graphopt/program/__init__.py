"""Programs: the prompt programs graphopt optimizes, and everything done with one.

- `model`: the program itself (`Program`, its `Step`s, `Demo`s, `ProgramIO`) and its file form.
- `answer_format`: an answer held to a JSON Schema (`AnswerFormat`); `retrieval`: demos per input.
- `run`: running and scoring a program on examples (`run_program`, `evaluate`).
- `pipeline`: a user's function that runs the steps as components.
- `shapes`: built-in program shapes (direct, cot, reason_then_answer).
- `files`: reading a program file (`read_program`).
- `predict`: a saved program ready to answer (`load_program`, `Runner`).
- `export`: a program as messages, text or Markdown to paste elsewhere.

The model loads with the package; the rest when first used (running a program needs the LM
layer and the tasks, which need the model).
"""

from __future__ import annotations

import importlib
from typing import Any

from .answer_format import AnswerFormat
from .model import ANSWER_STEP, REASON_TOKENS, SCHEMA_VERSION, Demo, Program, ProgramIO, Retrieval, Step

_LAZY = {
    "Evaluation": "run", "evaluate": "run", "run_program": "run", "error_tally": "run",
    "read_program": "files",
    "Runner": "predict", "Prediction": "predict", "load_program": "predict",
    "export_program": "export", "export_messages": "export",
    "SHAPES": "shapes", "make_shape": "shapes",
    "pipeline_program": "pipeline", "Components": "pipeline",
}

__all__ = ["Program", "Step", "Demo", "ProgramIO", "Retrieval", "AnswerFormat", "ANSWER_STEP", "REASON_TOKENS",
           "SCHEMA_VERSION", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
