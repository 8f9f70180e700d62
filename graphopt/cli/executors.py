"""The `--executor` and `--ray-address` options, shared by `search` and `study` (checked in `graphopt.app.executors`)."""

from __future__ import annotations

__all__ = ["ExecutorName", "RayAddress"]

from typing import Annotated

import typer

ExecutorName = Annotated[
    str, typer.Option("--executor", help="Where evaluations run: local (this process) or ray (a Ray cluster).")
]
RayAddress = Annotated[
    str | None,
    typer.Option("--ray-address", metavar="auto|ray://HOST:PORT", help="Ray cluster to join (default: start a local one)."),
]
