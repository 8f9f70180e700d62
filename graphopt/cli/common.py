"""Options and helpers shared by the subcommands: models per level, cache, the usage table."""

from __future__ import annotations

__all__ = [
    "ProgramModel",
    "OptimizerModel",
    "MetaModel",
    "CacheDir",
    "NoCache",
    "make_lm",
    "print_usage",
    "console",
    "run_async",
    "write_json",
]

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ..errors import ConfigError
from ..lm import LM, LMConfig
from ..lm.budget import Budget

# Piped or captured output is not cut to 80 columns: tables stay whole in logs and CI.
console = Console(stderr=False, highlight=False, width=None if sys.stdout.isatty() else 140)

ProgramModel = Annotated[
    str | None, typer.Option("--program-model", help="Model of the program level (any litellm model string).")
]
OptimizerModel = Annotated[
    str | None, typer.Option("--optimizer-model", help="Model of the optimizer nodes (critique, rewrite, ...).")
]
MetaModel = Annotated[str | None, typer.Option("--meta-model", help="Model of the meta optimizers.")]
CacheDir = Annotated[
    Path | None, typer.Option("--cache-dir", help="Response cache directory (default ~/.cache/graphopt).")
]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Turn the response cache off.")]


def make_lm(
    program_model: str | None = None,
    optimizer_model: str | None = None,
    meta_model: str | None = None,
    *,
    cache_dir: Path | None = None,
    no_cache: bool = False,
    budget: Budget | None = None,
) -> LM:
    """An LM client for a command, with the models checked before anything is spent."""
    config = LMConfig().with_models(program=program_model, optimizer=optimizer_model, meta=meta_model)
    if no_cache:
        config = config.model_copy(update={"cache_dir": None})
    elif cache_dir is not None:
        config = config.model_copy(update={"cache_dir": cache_dir})
    lm = LM(config, budget=budget)
    lm.check_models()
    return lm


def run_async(coro: Any) -> Any:
    return asyncio.run(coro)


def print_usage(lm: LM, title: str = "Model usage") -> None:
    """The usage table: one row per level and model, then the total."""
    table = Table(title=title, title_justify="left")
    for column in ("level", "model", "calls", "cache hits", "prompt tok", "completion tok", "cost $", "latency s"):
        table.add_column(column, justify="left" if column in ("level", "model") else "right")
    data = lm.ledger.to_dict()
    for row in data["models"]:
        table.add_row(
            row["level"],
            row["model"],
            str(row["calls"]),
            str(row["cache_hits"]),
            str(row["prompt_tokens"]),
            str(row["completion_tokens"]),
            f"{row['cost']:.4f}",
            f"{row['latency']:.1f}",
        )
    total = data["total"]
    table.add_row(
        "total", "", str(total["calls"]), str(total["cache_hits"]), str(total["prompt_tokens"]),
        str(total["completion_tokens"]), f"{total['cost']:.4f}", f"{total['latency']:.1f}",
    )
    console.print(table)


def write_json(path: Path, data: Any) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
