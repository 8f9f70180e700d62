"""`graphopt validate | viz | schema`: check, draw and describe graph files.

Each GRAPH argument is a .json/.yaml/.yml file or the name of a built-in graph (e.g. `tgd`).
"""

from __future__ import annotations

__all__ = ["validate_command", "viz_command", "schema_command"]

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from .app import app

GraphArg = Annotated[str, typer.Argument(metavar="GRAPH", help="A .json/.yaml graph file or a built-in graph name.")]


@app.command("validate")
def validate_command(graph: GraphArg) -> None:
    """Check a graph file: prints `ok: NAME (N nodes, M edges)`, or one `error:` line per problem."""
    from ..graph.io import load_graph
    from ..graph.validate import check

    spec = check(load_graph(graph))
    typer.echo(f"ok: {spec.name} ({_count(spec.nodes, 'node')}, {_count(spec.edges, 'edge')})")


@app.command("viz")
def viz_command(
    graph: Annotated[str | None, typer.Argument(metavar="[GRAPH]", help="A .json/.yaml graph file or a built-in graph name.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Drawing to write: .svg, .png, .pdf (need Graphviz), .dot, or .mmd (Mermaid, drawn by GitHub and most editors).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="svg, png, pdf, dot or mermaid (default: from the --out suffix); dot and mermaid without --out print to stdout.")] = None,
    run: Annotated[Path | None, typer.Option("--run", help="Draw a candidate of this search run directory instead of GRAPH.")] = None,
    candidate: Annotated[str | None, typer.Option("--candidate", help="With --run: candidate id (default: the winner).")] = None,
) -> None:
    """Draw a graph file, or any candidate of a search run. Invalid graphs are drawn too (problems in red)."""
    from ..errors import ConfigError
    from ..graph.io import load_graph
    from ..graph.validate import validate
    from ..viz.dot import TEXT_FORMATS, drawing_format, drawing_text, render
    from ..viz.report import candidate_spec

    if (graph is None) == (run is None) or (candidate is not None and run is None):
        raise ConfigError("give either GRAPH or --run RUN_DIR [--candidate ID] (see graphopt viz --help)")
    if out is None and (fmt is None or drawing_format(None, fmt) not in TEXT_FORMATS):
        raise ConfigError("give --out FILE (.svg, .png, .pdf, .dot or .mmd), or --format dot|mermaid to print the drawing")
    spec = candidate_spec(run, candidate or "best") if run is not None else load_graph(graph)
    problems = validate(spec)
    if out is None:
        sys.stdout.write(drawing_text(spec, drawing_format(None, fmt)))
    else:
        render(spec, out, fmt)
    if problems:
        typer.echo(f"note: {spec.name} has {_count(problems, 'problem')}; see graphopt validate {graph or ''}".rstrip(), err=True)
    if out is not None:
        typer.echo(f"wrote {out}")


@app.command("schema")
def schema_command(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the schema to a file instead of stdout.")] = None,
) -> None:
    """Print the JSON Schema of graph files (for editors and for models asked to write graphs)."""
    from ..graph.io import graph_json_schema
    from ..app.output import write_json

    schema = graph_json_schema()
    if out is None:
        sys.stdout.write(json.dumps(schema, indent=2) + "\n")
    else:
        write_json(out, schema)
        typer.echo(f"wrote {out}")


@app.command("operators")
def operators_command(
    name: Annotated[str | None, typer.Argument(help="One operator to show in full (ports, params, prompts and their placeholders).")] = None,
) -> None:
    """List the operators a graph can use: ports and types, params with ranges, prompts; NAME shows one in full."""
    from ..operators.catalogue import operator_catalogue, operator_detail

    typer.echo(operator_detail(name) if name else operator_catalogue()
               + "\n\n`graphopt operators NAME` shows one with what each port and parameter means and its prompts.")


def _count(items: list, noun: str) -> str:
    return f"{len(items)} {noun}{'' if len(items) == 1 else 's'}"
