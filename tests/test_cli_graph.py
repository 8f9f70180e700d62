"""`graphopt validate | viz | schema`: exit codes 0/2 and one `error:` line per problem."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from graph_fixtures import graph_test_operators, reference_dict  # noqa: F401  (registers the t_* operators here)

from graphopt.cli import main
from graphopt.graph import io
from graphopt.viz import dot as dot_module


def write(tmp_path: Path, data: dict, name: str = "g.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_validate_prints_ok_with_counts_and_exits_0(tmp_path: Path, capsys):
    assert main(["validate", str(write(tmp_path, reference_dict()))]) == 0
    out, err = capsys.readouterr()
    assert out == "ok: reference (4 nodes, 8 edges)\n" and err == ""


def test_validate_prints_one_error_line_per_problem_and_exits_2(tmp_path: Path, capsys):
    data = reference_dict()
    data["nodes"][0]["op"] = "t_critiqe"
    data["nodes"][1]["params"] = {"k": 0}
    data["edges"].append({"source": "rw.candidates", "target": "crit.feedback"})
    assert main(["validate", str(write(tmp_path, data))]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == ""
    assert all(line.startswith("error: ") for line in lines)
    assert lines[0].startswith("error: node crit: unknown operator 't_critiqe' (did you mean 't_critique'")
    assert lines[1:] == ["error: node rw: param 'k': input should be greater than or equal to 1", "error: cycle: crit -> rw -> crit"]
    assert "Traceback" not in err


def test_validate_names_a_type_mismatch(tmp_path: Path, capsys):
    data = reference_dict()
    data["edges"].append({"source": "crit.feedback", "target": "sel.candidates"})
    assert main(["validate", str(write(tmp_path, data, "g.yaml"))]) == 2
    err = capsys.readouterr().err
    assert err == "error: edge crit.feedback -> sel.candidates: port 'candidates' of sel expects Candidates, got Feedback\n"


def test_malformed_file_is_one_error_line(tmp_path: Path, capsys):
    path = tmp_path / "g.json"
    path.write_text('{"name": "g",\n "nodes": [}')
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: not valid JSON:") and "(line 2" in err


def test_wrong_structure_is_one_line_per_field(tmp_path: Path, capsys):
    path = write(tmp_path, {"name": "g", "nodes": [{"id": "a"}, {"op": "x"}], "edges": []})
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {path}: nodes.0.op: field required",
        f"error: {path}: nodes.1.id: field required",
    ]


def test_missing_file_and_unknown_builtin_exit_2(tmp_path: Path, capsys, monkeypatch):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert capsys.readouterr().err == f"error: file not found: {tmp_path / 'nope.yaml'}\n"
    monkeypatch.setattr(io, "builtin_graph_names", lambda: ["tgd", "opro"])
    assert main(["validate", "tgdd"]) == 2
    assert "did you mean 'tgd'" in capsys.readouterr().err


def test_validate_accepts_builtin_names(capsys):
    names = io.builtin_graph_names()
    assert "tgd" in names
    assert main(["validate", names[0]]) == 0
    assert capsys.readouterr().out.startswith(f"ok: {names[0]} (")


def test_viz_writes_dot_without_graphviz(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setattr(dot_module.shutil, "which", lambda name: None)
    out = tmp_path / "g.dot"
    assert main(["viz", str(write(tmp_path, reference_dict())), "-o", str(out)]) == 0
    assert out.read_text().startswith('digraph "reference" {')
    assert capsys.readouterr().out == f"wrote {out}\n"


def test_viz_to_png_without_graphviz_is_one_error_line(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setattr(dot_module.shutil, "which", lambda name: None)
    assert main(["viz", str(write(tmp_path, reference_dict())), "-o", str(tmp_path / "g.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "install Graphviz (apt-get install graphviz) or write .dot" in err


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs the Graphviz `dot` program")
def test_viz_draws_invalid_graphs_with_a_note(tmp_path: Path, capsys):
    data = reference_dict()
    data["nodes"][0]["op"] = "nope"
    out = tmp_path / "g.svg"
    assert main(["viz", str(write(tmp_path, data)), "--out", str(out)]) == 0
    assert "<svg" in out.read_text()
    assert "note: reference has 1 problem; see graphopt validate" in capsys.readouterr().err


def test_viz_needs_an_output(tmp_path: Path, capsys):
    assert main(["viz", str(write(tmp_path, reference_dict()))]) == 2
    assert "--out" in capsys.readouterr().err


def test_viz_format_mermaid_prints_or_writes_a_flowchart_without_graphviz(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.setattr(dot_module.shutil, "which", lambda name: None)
    graph = str(write(tmp_path, reference_dict()))
    assert main(["viz", graph, "--format", "mermaid"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("flowchart LR\n  %% reference\n") and "wrote" not in printed
    out = tmp_path / "g.txt"  # a suffix naming no format: --format decides
    assert main(["viz", graph, "-o", str(out), "-f", "mermaid"]) == 0
    assert out.read_text() == printed and capsys.readouterr().out == f"wrote {out}\n"
    assert main(["viz", graph, "-f", "dot"]) == 0
    assert capsys.readouterr().out.startswith('digraph "reference" {')


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "mermiad"], "unknown drawing format 'mermiad' (did you mean 'mermaid'?)"),
        (["--format", "png"], "give --out FILE"),
        (["--format", "mermaid", "-o", "g.svg"], "cannot draw mermaid to g.svg: its suffix '.svg' names svg"),
    ],
)
def test_viz_format_mistakes_are_one_line_exit_2(tmp_path: Path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["viz", str(write(tmp_path, reference_dict())), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not (tmp_path / "g.svg").exists()


def test_schema_prints_the_json_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$id"].startswith("urn:graphopt:graph-spec") and "nodes" in schema["properties"]


def test_schema_can_write_a_file(tmp_path: Path, capsys):
    out = tmp_path / "schema.json"
    assert main(["schema", "-o", str(out)]) == 0
    assert json.loads(out.read_text())["title"] == "graphopt graph"


def test_operators_lists_every_registered_operator_and_shows_one_in_full(capsys):
    from graphopt.operators.registry import operator_names

    assert main(["operators"]) == 0
    listing = capsys.readouterr().out
    assert all(f"- {name} (" in listing for name in operator_names())
    assert "k=3 [1..16]" in listing  # retrieve's k, with its range
    assert main(["operators", "critique"]) == 0
    detail = capsys.readouterr().out
    assert "placeholders: {failures}, {n}, {n_correct}, {program}, {successes}" in detail
    assert "max_failures=3 [1..64]: failing traces shown" in detail
    assert main(["operators", "critiqe"]) == 2
    assert "did you mean 'critique'" in capsys.readouterr().err


def test_the_schema_enumerates_operator_names_from_the_registry(capsys):
    from graphopt.operators.registry import operator_names

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$defs"]["NodeSpec"]["properties"]["op"]["enum"] == operator_names()
