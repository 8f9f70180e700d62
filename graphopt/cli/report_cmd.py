"""`graphopt report RUN_DIR`: the HTML report of a search run (finished, running or interrupted)."""

from __future__ import annotations

__all__ = ["report_command"]

from pathlib import Path
from typing import Annotated

import typer

from .app import app


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A search's output directory (it holds run.sqlite).")],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file to write (default RUN_DIR/report.html).")] = None,
) -> None:
    """Write one self-contained HTML page: the winner, its lineage, plots, every candidate and the spend.

    It only reads the run store, so it also works while the search runs or after it was interrupted.
    """
    from ..viz.report import write_report

    typer.echo(f"wrote {write_report(run_dir, out)}")
