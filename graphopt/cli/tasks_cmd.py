"""`graphopt tasks`: list the registered tasks."""

from __future__ import annotations

from rich.table import Table

from ..tasks.registry import factories
from .app import app
from .common import console


@app.command("tasks")
def tasks_command() -> None:
    """List the tasks that --task accepts."""
    table = Table(title="Tasks", title_justify="left")
    table.add_column("name")
    table.add_column("description")
    for factory in factories():
        table.add_row(factory.name, factory.description)
    console.print(table)
