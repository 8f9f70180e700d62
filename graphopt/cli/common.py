"""Options and helpers shared by the subcommands: models per level, cache, the usage table."""

from __future__ import annotations

__all__ = [
    "ProgramModel",
    "OptimizerModel",
    "MetaModel",
    "JudgeModel",
    "ConfigFile",
    "SetOption",
    "CacheDir",
    "NoCache",
    "make_lm",
    "connect_with",
    "print_task",
    "resolve",
    "print_usage",
    "console",
    "run_async",
]

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..aio import run_sync
from ..app.models import ModelRequest
from ..app.task import describe_task
from ..lm import LEVELS, LM
from ..lm.budget import Budget
from ..lm.client import ESTIMATED
from ..lm.settings import Settings

# Piped or captured output is not cut to 80 columns: tables stay whole in logs and CI.
console = Console(stderr=False, highlight=False, width=None if sys.stdout.isatty() else 140)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)

ProgramModel = Annotated[
    str | None, typer.Option("--program-model", help="Model of the program level (any litellm model string).")
]
OptimizerModel = Annotated[
    str | None, typer.Option("--optimizer-model", help="Model of the optimizer nodes (critique, rewrite, ...).")
]
MetaModel = Annotated[str | None, typer.Option("--meta-model", help="Model of the meta optimizers.")]
JudgeModel = Annotated[
    str | None, typer.Option("--judge-model", help="Model of the judge level (the judge metric, best_of_n's picker).")
]
CacheDir = Annotated[
    Path | None, typer.Option("--cache-dir", help="Response cache directory (default ~/.cache/graphopt).")
]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Turn the response cache off.")]
ConfigFile = Annotated[
    Path | None,
    typer.Option("--config", help="Settings file (TOML; default ./graphopt.toml or $GRAPHOPT_CONFIG).", dir_okay=False),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="LEVEL.KEY=VALUE",
        help="Override one setting (repeatable), e.g. --set program.api_base=http://127.0.0.1:8000/v1. "
        "See graphopt config show.",
    ),
]


def _warn(text: str) -> None:
    err_console.print(text, markup=False, soft_wrap=True)


def resolve(
    program_model: str | None = None,
    optimizer_model: str | None = None,
    meta_model: str | None = None,
    *,
    judge_model: str | None = None,
    config_file: Path | None = None,
    overrides: list[str] | None = None,
    cache_dir: Path | None = None,
    no_cache: bool = False,
) -> Settings:
    """The settings of a command: flags, then environment, then the config file, then defaults."""
    return ModelRequest.pick(locals()).settings(_warn)


def make_lm(
    program_model: str | None = None,
    optimizer_model: str | None = None,
    meta_model: str | None = None,
    *,
    judge_model: str | None = None,
    config_file: Path | None = None,
    overrides: list[str] | None = None,
    cache_dir: Path | None = None,
    no_cache: bool = False,
    budget: Budget | None = None,
    levels: tuple[str, ...] | None = None,
) -> LM:
    """An LM client for a command (`ModelRequest.connect`, its warnings on stderr).

    Raises:
        ConfigError: a setting, a model or a cap that cannot be used (one line per problem).
    """
    return ModelRequest.pick(locals()).connect(budget=budget, levels=levels, warn=_warn)


def print_task(kind: str, data: Any) -> None:
    """A use case's `on_event` for the line saying how the task is read and scored."""
    if kind == "task":
        console.print(describe_task(data), markup=False, soft_wrap=True)


def connect_with(make: Any) -> Any:
    """A use case's `connect` that opens the LM through `make` (a command's `make_lm`), flags as keywords."""

    def connect(models: ModelRequest, *, budget: Budget | None = None, levels: tuple[str, ...] | None = None) -> LM:
        flags = {"program_model": models.program, "optimizer_model": models.optimizer, "meta_model": models.meta}
        return make(**flags, judge_model=models.judge, config_file=models.config_file, overrides=list(models.overrides),
                    cache_dir=models.cache_dir, no_cache=models.no_cache, budget=budget, levels=levels)

    return connect


def run_async(coro: Any) -> Any:
    return run_sync(coro)


def print_usage(lm: LM, title: str = "Model usage") -> None:
    """The usage table: one row per level and model, then the total.

    "failed" counts calls that failed for good (not retryable, or past the retries); "retried"
    the failed attempts the client retried.
    """
    table = Table(title=title, title_justify="left")
    for column in ("level", "model", "calls", "cache hits", "prompt tok", "completion tok", "cost $", "latency s", "failed", "retried"):
        table.add_column(column, justify="left" if column in ("level", "model") else "right")
    data = lm.ledger.to_dict()
    unknown = False
    for row in data["models"]:
        # "$?": dollars of a model with no known price were not counted; $0 would be a lie.
        priced = _row_priced(lm, row["level"], row["model"])
        unknown = unknown or (not priced and row["calls"] > 0)
        table.add_row(
            row["level"],
            _model_and_endpoint(lm, row["level"], row["model"]),
            str(row["calls"]),
            str(row["cache_hits"]),
            str(row["prompt_tokens"]),
            str(row["completion_tokens"]),
            f"{row['cost']:.4f}" if priced else "$?",
            f"{row['latency']:.1f}",
            str(row.get("failures", 0)),
            str(max(row.get("errors", 0) - row.get("failures", 0), 0)),
        )
    total = data["total"]
    table.add_row(
        "total", "", str(total["calls"]), str(total["cache_hits"]), str(total["prompt_tokens"]),
        str(total["completion_tokens"]), f"{total['cost']:.4f}" + (" + $?" if unknown else ""), f"{total['latency']:.1f}",
        str(total.get("failures", 0)), str(max(total.get("errors", 0) - total.get("failures", 0), 0)),
    )
    console.print(table)


def _model_and_endpoint(lm: LM, level: str, model: str) -> str:
    """"openai/qwen @ 127.0.0.1:8000" for a model on a self-hosted endpoint, else the model."""
    if model.endswith(ESTIMATED):
        return _model_and_endpoint(lm, level, model.removesuffix(ESTIMATED)) + ESTIMATED
    if level in LEVELS and lm.model(level) == model and lm.config.level(level).api_base:
        base = lm.config.level(level).api_base or ""
        host = base.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]  # no user:password@
        return f"{model} @ {host}"
    return model


def _row_priced(lm: LM, level: str, model: str) -> bool:
    model = model.removesuffix(ESTIMATED)
    if level in LEVELS and lm.model(level) == model:
        return lm.price_known(level)
    known = getattr(lm.transport, "price_known", None)
    return True if known is None else bool(known(model))
