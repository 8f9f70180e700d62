"""Task selection options shared by eval, optimize and search (their values become a `graphopt.app.TaskRequest`)."""

from __future__ import annotations

__all__ = [
    "TaskName", "Source", "Difficulty", "Seed", "InputKey", "TargetKey", "InputTemplate", "Instruction",
    "OutputFormat", "Extract", "Metric", "AnswerTokens", "Pipeline", "SplitSizes",
]

from typing import Annotated

import typer

TaskName = Annotated[str, typer.Option("--task", "-t", help="Task name (see `graphopt tasks`).")]
Source = Annotated[
    str | None,
    typer.Option("--source", help="Where the data comes from: generated, official, a file path, or a Hub dataset id (--task hub)."),
]
Difficulty = Annotated[
    str | None, typer.Option("--difficulty", help="Generator difficulty: easy, medium, hard or official (BBH's own), or a level 1-4.")
]
Seed = Annotated[int, typer.Option("--seed", help="Seed for data generation and splits.")]
InputKey = Annotated[str | None, typer.Option("--input-key", help="Input column of a custom data file.")]
TargetKey = Annotated[str | None, typer.Option("--target-key", help="Target column of a custom data file.")]
InputTemplate = Annotated[
    str | None,
    typer.Option("--input-template", help='Input of a custom data file over several columns, e.g. "Question: {question}\\nChoices: {choices}" (\\n is a line break).'),
]
Instruction = Annotated[str | None, typer.Option("--instruction", help="Instruction of the seed program, in place of the task's own (\\n is a line break).")]
OutputFormat = Annotated[str | None, typer.Option("--output-format", help="Output format of the seed program, in place of the task's own (\\n is a line break; \"\" for none).")]
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
    int | None, typer.Option("--answer-tokens", min=1, max=100_000, help="Tokens the program may write per answer (default: the task's; the embedded model: at most half its context).")
]


SplitSizes = Annotated[
    str | None,
    typer.Option("--split-sizes", metavar="TRAIN,VAL,TEST", help="Examples in each split, e.g. 30,40,100 (default: the task's)."),
]
