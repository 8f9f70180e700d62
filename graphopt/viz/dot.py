"""Drawing a graph spec with Graphviz: deterministic DOT text, and SVG/PNG/PDF through `dot`.

Nodes are coloured by operator kind (a legend says which), labelled with their id, operator and
the params they set, and carry a tooltip with the start of each prompt (in SVG). Edges are
labelled with their ports and type. The entry `input` and the `output` marker after the exit node
are dark; the exit node has a double border. Invalid specs are drawn too: unknown operators and
ports show in red, so a drawing can help find what `graphopt validate` complains about.

Example:
    >>> from graphopt.graph import GraphSpec
    >>> to_dot(GraphSpec(name="empty", nodes=[], edges=[])).splitlines()[0]
    'digraph "empty" {'
"""

from __future__ import annotations

__all__ = ["KIND_COLORS", "TYPE_COLORS", "FORMATS", "to_dot", "to_svg", "render", "drawing_format", "drawing_text", "GraphView"]

import html
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SpecError, did_you_mean
from ..graph.spec import INPUT_NODE, INPUT_PORTS, GraphSpec, NodeSpec
from ..operators.base import Operator
from ..operators.registry import get_operator

KIND_COLORS = {
    "llm": "#cfe2ff",  # calls the optimizer model
    "score": "#ffe0b3",  # calls the program model
    "merge": "#d3f0d8",  # joins candidates
    "data": "#e8dcf7",  # no model call
}
KIND_DOCS = {
    "llm": "llm: optimizer model",
    "score": "score: program model",
    "merge": "merge: joins inputs",
    "data": "data: no model call",
}
UNKNOWN_COLOR = "#f8d0d0"
TYPE_COLORS = {"Candidates": "#1f4e79", "Program": "#1f4e79", "Feedback": "#b35900", "Traces": "#5a5a5a", "History": "#6b3fa0"}
ENTRY_COLOR = "#2b2b2b"
OUTPUT_ID = "graphopt.output"  # ids with '.' cannot clash with a valid node id
LEGEND_ID = "graphopt.legend"
PROMPT_CHARS = 200
MAX_PARAMS = 4
IMAGE_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
DOT_SUFFIXES = (".dot", ".gv")


def to_dot(spec: GraphSpec) -> str:
    """The DOT source of a drawing of the spec (no Graphviz program needed; same spec, same text).

    Args:
        spec: the graph, valid or not.

    Returns:
        DOT text for `dot -Tsvg`.
    """
    ops = {node.id: _operator(node.op) for node in spec.nodes}
    lines = [
        f"digraph {_q(spec.name)} {{",
        f"  graph [rankdir=LR, fontname=Helvetica, labelloc=t, labeljust=l, nodesep=0.35, ranksep=0.6, label={_title(spec)}];",
        '  node [shape=box, style="rounded,filled", fontname=Helvetica, fontsize=12, color="#555555", margin="0.15,0.08"];',
        "  edge [fontname=Helvetica, fontsize=10, arrowsize=0.8];",
        f'  {_q(INPUT_NODE)} [label="input", shape=cds, style=filled, fillcolor="{ENTRY_COLOR}", fontcolor=white,'
        f" tooltip={_q('the step starts here: ' + ', '.join(f'{p}: {t}' for p, t in INPUT_PORTS.items()))}];",
    ]
    exit_node = _exit(spec)
    for node in spec.nodes:
        lines.append(f"  {_q(node.id)} [{_node_attrs(node, ops.get(node.id), node.id == exit_node)}];")
    for edge in spec.edges:
        source_type = _port_type(edge.source_node, edge.source_port, "output", ops)
        target_type = _port_type(edge.target_node, edge.target_port, "input", ops)
        lines.append(f"  {_q(edge.source_node)} -> {_q(edge.target_node)} [{_edge_attrs(edge.source_port, edge.target_port, source_type, target_type)}];")
    if exit_node is not None:
        port = _exit_port(ops.get(exit_node))
        lines.append(
            f'  {_q(OUTPUT_ID)} [label="output", shape=cds, style=filled, fillcolor="{ENTRY_COLOR}", fontcolor=white,'
            f" tooltip={_q('the step returns the exit node' + chr(39) + 's Candidates')}];"
        )
        label = f"{port}: Candidates" if port else "Candidates"
        lines.append(f'  {_q(exit_node)} -> {_q(OUTPUT_ID)} [label={_q(label)}, color="{TYPE_COLORS["Candidates"]}", penwidth=1.6];')
    lines.append(_legend(any(op is None for op in ops.values())))
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(spec: GraphSpec) -> str:
    """The drawing as SVG text (needs the `dot` program).

    Raises:
        ConfigError: `dot` is missing or fails.
    """
    return _run_dot(to_dot(spec), "svg", None, "an SVG").decode("utf-8")


FORMATS = ("svg", "png", "pdf", "dot", "mermaid")
TEXT_FORMATS = ("dot", "mermaid")


def drawing_format(path: str | Path | None, fmt: str | None = None) -> str:
    """The format of a drawing: `fmt` when given, else the one the suffix of `path` names.

    Raises:
        ConfigError: an unknown format or suffix, or a suffix naming another format than `fmt`.
    """
    from .mermaid import MERMAID_SUFFIXES

    if fmt is not None and fmt.lower() not in FORMATS:
        raise ConfigError(f"unknown drawing format {fmt!r}{did_you_mean(fmt.lower(), FORMATS)}: use one of {', '.join(FORMATS)}")
    suffix = Path(path).suffix.lower() if path is not None else ""
    by_suffix = (IMAGE_FORMATS.get(suffix) or ("dot" if suffix in DOT_SUFFIXES else None)
                 or ("mermaid" if suffix in MERMAID_SUFFIXES else None))
    if fmt is None:
        if by_suffix is None:
            shown = repr(suffix) if suffix else "(no suffix)"
            raise ConfigError(f"cannot draw to {path}: unknown suffix {shown} (use .svg, .png, .pdf, .dot or .mmd)")
        return by_suffix
    if by_suffix is not None and by_suffix != fmt.lower():
        raise ConfigError(f"cannot draw {fmt} to {path}: its suffix {suffix!r} names {by_suffix}; change the suffix or drop --format")
    return fmt.lower()


def drawing_text(spec: GraphSpec, fmt: str) -> str:
    """The text of a text drawing: DOT source (`dot`) or a Mermaid flowchart (`mermaid`)."""
    from .mermaid import to_mermaid

    return to_mermaid(spec) if fmt == "mermaid" else to_dot(spec)


def render(spec: GraphSpec, path: str | Path, fmt: str | None = None) -> Path:
    """Writes the drawing; `fmt` or else the suffix picks the format: .svg, .png, .pdf (via `dot`),
    .dot/.gv, or .mmd/.mermaid (a Mermaid flowchart, no Graphviz needed).

    Args:
        spec: the graph.
        path: the file to write, in an existing folder.
        fmt: one of `FORMATS` (None: from the suffix); a suffix naming another format is refused.

    Returns:
        The path written.

    Raises:
        ConfigError: unknown format or suffix, `dot` missing or failing, or the file cannot be written.
    """
    path = Path(path)
    fmt = drawing_format(path, fmt)
    if not path.parent.is_dir():  # a typo in the folder must not create a tree of folders
        raise ConfigError(f"cannot write {path}: the folder {path.parent} does not exist")
    try:
        if fmt in TEXT_FORMATS:
            path.write_text(drawing_text(spec, fmt), encoding="utf-8")
        else:
            _run_dot(to_dot(spec), fmt, path, str(path))
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path


class GraphView:
    """Shows a spec as SVG in notebooks: `GraphView(spec)` as the last expression of a cell.

    Attributes:
        spec: the graph shown.
    """

    def __init__(self, spec: GraphSpec):
        self.spec = spec

    def _repr_svg_(self) -> str | None:
        try:
            return to_svg(self.spec)
        except ConfigError:  # no `dot`: the notebook falls back to the text repr
            return None

    def __repr__(self) -> str:
        return f"GraphView({self.spec.name!r}: {len(self.spec.nodes)} nodes, {len(self.spec.edges)} edges)"


# --- pieces of the drawing ---------------------------------------------------------------------


def _operator(name: str) -> type[Operator] | None:
    try:
        return get_operator(name)
    except SpecError:
        return None


def _exit(spec: GraphSpec) -> str | None:
    """The one node without outgoing edges, if there is exactly one."""
    feeding = {edge.source_node for edge in spec.edges}
    sinks = [node.id for node in spec.nodes if node.id not in feeding and node.id != INPUT_NODE]
    return sinks[0] if len(sinks) == 1 else None


def _exit_port(op: type[Operator] | None) -> str:
    if op is None:
        return ""
    return next((name for name, port in op.outputs.items() if port.type == "Candidates"), "")


def _port_type(node: str, port: str, direction: str, ops: dict[str, type[Operator] | None]) -> str | None:
    if node == INPUT_NODE:
        return INPUT_PORTS.get(port) if direction == "output" else None
    op = ops.get(node)
    if op is None:
        return None
    found = (op.outputs if direction == "output" else op.inputs).get(port)
    return found.type if found else None


def _kind(node: NodeSpec, op: type[Operator] | None) -> str | None:
    """The node's kind; an instance may refine its class's (ensemble in combine mode calls a model)."""
    if op is None:
        return None
    try:
        return str(op(node.id, node.params, node.prompts).kind)
    except Exception:  # noqa: BLE001  (invalid params: draw with the class's kind)
        return op.kind


def _node_attrs(node: NodeSpec, op: type[Operator] | None, is_exit: bool) -> str:
    kind = _kind(node, op)
    rows = [f"<B>{_h(node.id)}</B>"]
    about = f"{node.op} · {kind}" if op is not None else f"{node.op} · unknown operator"
    rows.append(f'<FONT POINT-SIZE="10" COLOR="#444444">{_h(about)}</FONT>')
    params = [f"{key}={_short(value, 24)}" for key, value in sorted(node.params.items())]
    if len(params) > MAX_PARAMS:
        params = [*params[:MAX_PARAMS], f"+{len(params) - MAX_PARAMS} more"]
    for pair in _pairs(params):
        rows.append(f'<FONT POINT-SIZE="9">{_h("  ".join(pair))}</FONT>')
    if node.prompts:
        rows.append(f'<FONT POINT-SIZE="9"><I>{_h("prompt override: " + ", ".join(sorted(node.prompts)))}</I></FONT>')
    if is_exit:
        rows.append('<FONT POINT-SIZE="9"><B>exit</B></FONT>')
    label = '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(
        f"<TR><TD>{row}</TD></TR>" for row in rows
    ) + "</TABLE>>"
    attrs = [f"label={label}", f'fillcolor="{KIND_COLORS.get(kind or "", UNKNOWN_COLOR)}"']
    if op is None:
        attrs.append('color="#c0392b", style="rounded,filled,dashed"')
    if is_exit:
        attrs.append("peripheries=2, penwidth=1.5")
    attrs.append(f"tooltip={_q(_tooltip(node, op, kind))}")
    return ", ".join(attrs)


def _tooltip(node: NodeSpec, op: type[Operator] | None, kind: str | None) -> str:
    head = f"{node.id} ({node.op}, {kind})" if op is not None else f"{node.id} ({node.op}: unknown operator)"
    parts = [head]
    names = list(op.prompts) if op is not None else []
    names += [name for name in sorted(node.prompts) if name not in names]
    for name in names:
        if name in node.prompts:
            text, origin = node.prompts[name], "override"
        else:
            text, origin = op.prompts[name].text, "default"  # type: ignore[union-attr]
        parts.append(f"prompt {name} ({origin}): {_short(text, PROMPT_CHARS, quote=False)}")
    if len(parts) == 1:
        parts.append("no prompts")
    return "\n\n".join(parts)


def _edge_attrs(source_port: str, target_port: str, source_type: str | None, target_type: str | None) -> str:
    ports = source_port if source_port == target_port else f"{source_port} → {target_port}"
    the_type = source_type or target_type or "?"
    attrs = [f"label={_q(f'{ports}: {the_type}')}"]
    if source_type is None or target_type is None or source_type != target_type:
        wrong = f"{source_type or '?'} into {target_type or '?'}"
        attrs = [f"label={_q(f'{ports}: {wrong}')}", 'color="#c0392b", fontcolor="#c0392b", style=dashed']
    else:
        attrs += [f'color="{TYPE_COLORS.get(the_type, "#333333")}"', f'fontcolor="{TYPE_COLORS.get(the_type, "#333333")}"']
    return ", ".join(attrs)


def _legend(with_unknown: bool) -> str:
    cells = [(KIND_COLORS[kind], KIND_DOCS[kind]) for kind in KIND_COLORS]
    if with_unknown:
        cells.append((UNKNOWN_COLOR, "unknown operator"))
    rows = "".join(
        f'<TR><TD BGCOLOR="{color}" WIDTH="14" HEIGHT="12"></TD><TD ALIGN="LEFT">{_h(text)}</TD></TR>'
        for color, text in cells
    )
    rows += '<TR><TD COLSPAN="2" ALIGN="LEFT">double border: exit node</TD></TR>'
    table = (
        '<<TABLE BORDER="1" COLOR="#bbbbbb" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2">'
        f'<TR><TD COLSPAN="2" ALIGN="LEFT"><B>node kinds</B></TD></TR>{rows}</TABLE>>'
    )
    return f'  {_q(LEGEND_ID)} [shape=plaintext, style="", fontsize=9, label={table}, tooltip="legend"];'


def _title(spec: GraphSpec) -> str:
    title = f"<B>{_h(spec.name)}</B>"
    if spec.description:
        title += f'<BR/><FONT POINT-SIZE="10">{_h(_short(spec.description, 120, quote=False))}</FONT>'
    return f"<{title}>"


def _pairs(items: list[str]) -> list[list[str]]:
    return [items[i : i + 2] for i in range(0, len(items), 2)]


def _short(value: Any, limit: int, *, quote: bool = True) -> str:
    text = value if isinstance(value, str) and not quote else _json(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


def _q(text: str) -> str:
    """A DOT double-quoted string (escString: backslashes and quotes escaped, newlines as \\n)."""
    escaped = _printable(text).replace("\\", "\\\\").replace('"', '\\"').replace("\r", "").replace("\n", "\\n")
    return f'"{escaped}"'


def _h(text: str) -> str:
    """Text for an HTML-like label."""
    return html.escape(_printable(text), quote=False)


def _printable(text: str) -> str:
    """Control characters (but newlines) become spaces: `dot` rejects some of them."""
    return "".join(c if c == "\n" or c.isprintable() else " " for c in text)


def _run_dot(source: str, fmt: str, path: Path | None, what: str) -> bytes:
    binary = shutil.which("dot")
    if binary is None:
        raise ConfigError(f"cannot write {what}: the Graphviz `dot` program is missing; install Graphviz (apt-get install graphviz) or write .dot or .mmd (Mermaid)")
    args = [binary, f"-T{fmt}"] + (["-Gdpi=150"] if fmt == "png" else []) + (["-o", str(path)] if path else [])
    try:
        done = subprocess.run(args, input=source.encode("utf-8"), capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot write {what}: running dot failed: {exc}") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigError(f"cannot write {what}: dot failed: {message[0] if message else f'exit code {done.returncode}'}")
    return done.stdout
