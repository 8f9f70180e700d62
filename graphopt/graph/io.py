"""Reading and writing graph files (JSON or YAML, by extension) and the built-in graphs.

A round trip is exact: `load_graph(save_graph(spec, p)) == spec`, and saving a loaded file gives
back the same data (saved files always carry `schema_version`). Whatever the input, loading fails
only with a one-line `ConfigError` (the file cannot be found or read) or `SpecError` (its content
is not a graph spec), never with another exception.

Example:
    >>> from graphopt.graph.io import dumps_graph, loads_graph
    >>> spec = loads_graph('{"name": "g", "nodes": [], "edges": []}')
    >>> loads_graph(dumps_graph(spec, "yaml"), "yaml") == spec
    True
"""

from __future__ import annotations

__all__ = [
    "GRAPH_FORMATS",
    "load_graph",
    "save_graph",
    "loads_graph",
    "dumps_graph",
    "graph_from_dict",
    "graph_to_dict",
    "builtin_graph_names",
    "graph_json_schema",
]

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ..errors import ConfigError, SpecError, did_you_mean
from .spec import SPEC_VERSION, EdgeSpec, GraphSpec, NodeSpec, Provenance

GRAPH_FORMATS = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}
MAX_DEPTH = 64  # nesting levels a graph file may use (params are the only deep part)
MAX_VALUES = 200_000  # values a graph file may hold (stops YAML alias bombs)
MAX_PROBLEMS = 20  # structure problems listed before "... and N more"


def load_graph(source: str | Path) -> GraphSpec:
    """Loads a graph file (.json, .yaml, .yml) or a built-in graph by name ("tgd").

    Args:
        source: a path, or the name of a built-in graph (see `builtin_graph_names`).

    Returns:
        The spec, structurally sound; check it with `graphopt.graph.check` before running it.

    Raises:
        ConfigError: no such file or built-in graph, unreadable file or unknown extension.
        SpecError: the content is not valid JSON/YAML or not a graph spec.
    """
    text = str(source)
    path = Path(text)
    if isinstance(source, str) and _looks_like_name(text) and not _is_file(path):
        return _load_builtin(text)
    fmt = _format_of(path)
    if not _is_file(path):
        raise ConfigError(f"file not found: {text}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {text}: {exc.strerror or exc}") from exc
    return loads_graph(data, fmt, origin=text)


def save_graph(spec: GraphSpec, path: str | Path) -> Path:
    """Writes a spec as JSON or YAML, chosen by the file's extension; creates parent folders.

    Args:
        spec: the graph to write (it need not be valid).
        path: where to write, ending in .json, .yaml or .yml.

    Returns:
        The path written.

    Raises:
        ConfigError: unknown extension, or the file cannot be written.
    """
    path = Path(path)
    text = dumps_graph(spec, _format_of(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    return path


def dumps_graph(spec: GraphSpec, fmt: str = "json") -> str:
    """A spec as JSON or YAML text (fmt "json" or "yaml"); multi-line prompts become YAML blocks."""
    data = graph_to_dict(spec)
    if fmt == "json":
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        return text if _encodable(text) else json.dumps(data, indent=2) + "\n"
    if fmt == "yaml":
        # PyYAML mis-writes some characters (e.g. U+0085) unescaped, and libyaml cannot write lone
        # surrogates at all: the first text that reads back exactly wins, escaping all non-ASCII
        # on the pure-Python emitter being the one that always does.
        for dumper, allow_unicode in ((_BlockDumper, True), (_BlockDumper, False), (_PyBlockDumper, True)):
            try:
                text = yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=allow_unicode, width=100)
            except UnicodeEncodeError:
                continue
            if _encodable(text) and _reads_back(text, data):
                return text
        return yaml.dump(data, Dumper=_PyBlockDumper, sort_keys=False, width=100)
    raise ConfigError(f"unknown graph format {fmt!r} (use json or yaml)")


def loads_graph(text: str | bytes, fmt: str = "json", *, origin: str = "<string>") -> GraphSpec:
    """Parses JSON or YAML text (or UTF-8 bytes) into a spec.

    Args:
        text: the file's content.
        fmt: "json" or "yaml".
        origin: what to call the text in error messages (usually its path).

    Raises:
        SpecError: not UTF-8, not valid JSON/YAML (with the line), or not a graph spec.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SpecError(f"{origin}: not UTF-8 text (bad byte at offset {exc.start})") from None
    if not isinstance(text, str):
        raise SpecError(f"{origin}: expected text, got {type(text).__name__}")
    text = text.removeprefix("\ufeff")
    if fmt == "json":
        data = _parse_json(text, origin)
    elif fmt == "yaml":
        data = _parse_yaml(text, origin)
    else:
        raise ConfigError(f"unknown graph format {fmt!r} (use json or yaml)")
    return graph_from_dict(data, origin=origin)


def graph_from_dict(data: Any, *, origin: str = "graph") -> GraphSpec:
    """Builds a spec from plain data (as parsed from JSON), with one problem per line on failure.

    Validation is strict (no coercion: "2" is not an int) so that saving gives back the same data.

    Raises:
        SpecError: not plain JSON-like data, wrong structure, or unsupported schema_version.
    """
    if not isinstance(data, dict):
        got = "nothing (empty file)" if data is None else _kind(data)
        raise SpecError(f"{origin}: a graph must be a mapping with name, nodes and edges at the top level, got {got}")
    _check_plain(data, origin)
    version = data.get("schema_version", SPEC_VERSION)
    if type(version) is int and version != SPEC_VERSION:
        raise SpecError(f"{origin}: unsupported schema_version {version} (this graphopt reads {SPEC_VERSION})")
    try:
        return GraphSpec.model_validate(data, strict=True)
    except ValidationError as exc:
        problems = [_one_line(f"{origin}: {_describe(error)}") for error in exc.errors()]
    if len(problems) > MAX_PROBLEMS:
        problems = [*problems[:MAX_PROBLEMS], f"{origin}: ... and {len(problems) - MAX_PROBLEMS} more problems"]
    raise SpecError(problems)


def graph_to_dict(spec: GraphSpec) -> dict[str, Any]:
    """A spec as plain data: the fields it was given, and always `schema_version`."""
    data = spec.model_dump(mode="json", exclude_unset=True)
    data.setdefault("schema_version", spec.schema_version)
    return {name: data[name] for name in GraphSpec.model_fields if name in data}


def builtin_graph_names() -> list[str]:
    """Names of the graphs shipped in graphopt/graphs (usable wherever a graph file is)."""
    folder = resources.files("graphopt").joinpath("graphs")
    if not folder.is_dir():
        return []
    return sorted(entry.name[: -len(".json")] for entry in folder.iterdir() if entry.name.endswith(".json"))


def graph_json_schema() -> dict[str, Any]:
    """The JSON Schema of graph files, for editors (e.g. YAML language servers) and LLM output."""
    schema = GraphSpec.model_json_schema()
    defs = schema.get("$defs", {})
    end = {"type": "string", "pattern": r"^[^.\s]+\.[^.\s]+$"}
    edge = defs.get("EdgeSpec", {}).get("properties", {})
    edge.get("source", {}).update(end, description="Output port, written node.port (e.g. input.program).")
    edge.get("target", {}).update(end, description="Input port, written node.port (e.g. rewrite.feedback).")
    node = defs.get("NodeSpec", {}).get("properties", {})
    node.get("id", {}).update(description="Unique node id, without '.'; 'input' is reserved.")
    from ..operators.registry import operator_names

    node.get("op", {}).update(enum=operator_names(), description="Operator name (`graphopt operators` lists them).")
    node.get("params", {}).update(description="Operator parameters (checked against the operator).")
    node.get("prompts", {}).update(description="Prompt overrides by name; use only the operator's placeholders.")
    schema["properties"].get("schema_version", {}).update(enum=[SPEC_VERSION])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:graphopt:graph-spec:v{SPEC_VERSION}",
        **schema,
        "title": "graphopt graph",
        "description": "An optimizer graph: operator nodes joined by typed edges from the reserved "
        "node 'input' (ports program, traces, history) to one exit node that outputs Candidates.",
    }


# --- helpers -----------------------------------------------------------------------------------


def _looks_like_name(text: str) -> bool:
    return bool(text) and "/" not in text and "\\" not in text and Path(text).suffix.lower() not in GRAPH_FORMATS


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # e.g. a NUL byte or a name too long for the OS
        return False


def _format_of(path: Path) -> str:
    fmt = GRAPH_FORMATS.get(path.suffix.lower())
    if fmt is None:
        suffix = repr(path.suffix) if path.suffix else "(no suffix)"
        raise ConfigError(f"{path}: unknown graph file type {suffix} (use .json, .yaml or .yml)")
    return fmt


def _load_builtin(name: str) -> GraphSpec:
    names = builtin_graph_names()
    if name not in names:
        listed = ", ".join(names) or "none installed"
        raise ConfigError(f"no graph file or built-in graph named {name!r}{did_you_mean(name, names)} (built-ins: {listed})")
    data = resources.files("graphopt").joinpath("graphs", f"{name}.json").read_bytes()
    return loads_graph(data, "json", origin=f"built-in graph {name}")


def _parse_json(text: str, origin: str) -> Any:
    def reject(constant: str) -> Any:
        raise SpecError(f"{origin}: not valid JSON: {constant} is not a JSON number")

    try:
        return json.loads(text, parse_constant=reject)
    except json.JSONDecodeError as exc:
        raise SpecError(f"{origin}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise SpecError(f"{origin}: not valid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise SpecError(f"{origin}: not valid JSON: {exc}") from None


def _parse_yaml(text: str, origin: str) -> Any:
    try:
        return _load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        what = " ".join(str(exc.problem or exc.context or "syntax error").split())
        raise SpecError(f"{origin}: not valid YAML: {what}{where}") from None
    except RecursionError:
        raise SpecError(f"{origin}: not valid YAML: nested too deeply") from None
    except Exception as exc:  # noqa: BLE001  (the parser's other failures: bad dates, huge ints, ...)
        message = " ".join(str(exc).split()) or type(exc).__name__
        raise SpecError(f"{origin}: not valid YAML: {message}") from None


def _check_plain(data: Any, origin: str) -> None:
    """Only JSON values, at most MAX_DEPTH deep and MAX_VALUES in all (walked without recursion)."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    count = 0
    while stack:
        value, where, depth = stack.pop()
        count += 1
        at = _one_line(where if len(where) <= 60 else where[:57] + "...")
        at = at or "top level"
        if count > MAX_VALUES:
            raise SpecError(f"{origin}: too large (more than {MAX_VALUES} values)")
        if depth > MAX_DEPTH:
            raise SpecError(f"{origin}: {at}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise SpecError(f"{origin}: {at}: key {key!r} is not a string (quote it)")
                stack.append((item, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, f"{where}.{i}" if where else str(i), depth + 1) for i, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"{origin}: {at}: {value} is not a JSON number")
        elif value is not None and not isinstance(value, (str, int, float)):
            raise SpecError(f"{origin}: {at}: a {_kind(value)} is not a JSON value (quote it)")


_MODELS: dict[str, type[BaseModel]] = {"": GraphSpec, "nodes": NodeSpec, "edges": EdgeSpec, "provenance": Provenance}


def _describe(error: Any) -> str:
    """One pydantic error as 'loc: message', with did-you-mean for misspelt field names."""
    loc = [str(part) for part in error["loc"]]
    where = ".".join(loc) or "top level"
    if error["type"] == "extra_forbidden" and loc:
        parent = loc[0] if len(loc) > 1 else ""
        fields = list(_MODELS[parent].model_fields) if parent in _MODELS else []
        return f"{where}: unknown field{did_you_mean(loc[-1], fields)}"
    message = error["msg"]
    return f"{where}: {message[:1].lower()}{message[1:]}"


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _kind(value: Any) -> str:
    names = {dict: "mapping", list: "list", str: "string", int: "number", float: "number", bool: "boolean"}
    return names.get(type(value), type(value).__name__)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: fall back to \\u escapes
        return False
    return True


# libyaml's C emitter and parser when PyYAML has them: the pure-Python ones took 30 s to write
# and read back a 10 MB prompt. The same YAML either way.
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_yaml(text: str) -> Any:
    """YAML text as data: libyaml's parser when it reads the text, else PyYAML's (which reads a
    few things libyaml refuses, e.g. escaped lone surrogates, and words its errors better)."""
    if _SafeLoader is not yaml.SafeLoader:
        try:
            return yaml.load(text, Loader=_SafeLoader)
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def _reads_back(text: str, data: Any) -> bool:
    try:
        return _load_yaml(text) == data
    except yaml.YAMLError:
        return False


class _BlockDumper(_SafeDumper):  # type: ignore[misc,valid-type]
    """Writes multi-line strings as `|` blocks so prompts stay readable in YAML files."""


class _PyBlockDumper(yaml.SafeDumper):
    """`_BlockDumper` on the pure-Python emitter, the last resort should libyaml's output not read back."""


def _str_block(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_block)
_PyBlockDumper.add_representer(str, _str_block)
