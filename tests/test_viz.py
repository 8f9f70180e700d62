"""graphopt.viz: a pinned DOT snapshot, what the drawing shows, and rendering with or without `dot`.

Regenerate the snapshot with UPDATE_SNAPSHOTS=1 after an intended change of the drawing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from graph_fixtures import graph_test_operators, reference_dict, reference_spec  # noqa: F401  (registers the t_* operators here)

from graphopt.errors import ConfigError
from graphopt.graph.spec import GraphSpec
from graphopt.viz import GraphView, render, to_dot, to_svg
from graphopt.viz import dot as dot_module

SNAPSHOT = Path(__file__).parent / "snapshots" / "reference.dot"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs the Graphviz `dot` program")


def test_dot_of_the_reference_graph_matches_the_snapshot():
    text = to_dot(reference_spec())
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert SNAPSHOT.exists(), "no snapshot yet: run with UPDATE_SNAPSHOTS=1"
    assert text == SNAPSHOT.read_text(encoding="utf-8")


_DOT_IN_A_FRESH_PROCESS = """
import sys
sys.path.insert(0, {tests!r})
from graph_fixtures import TEST_OPERATORS
from test_viz import many_keyed_spec
from graphopt.operators.registry import register_operator
from graphopt.viz import to_dot
for cls in TEST_OPERATORS:
    register_operator(cls)
sys.stdout.write(to_dot(many_keyed_spec()))
"""


def many_keyed_spec() -> GraphSpec:
    """The reference graph with several params and prompt overrides per node, listed out of order."""
    data = reference_dict()
    data["nodes"][1]["params"] = {"zeta": 1, "k": 2, "alpha": 3, "mid": 4}
    data["nodes"][1]["prompts"] = {"zz": "last {program}", **data["nodes"][1]["prompts"], "aa": "first {program}"}
    return GraphSpec.model_validate(data)


def test_dot_does_not_depend_on_the_process_hash_seed():
    script = _DOT_IN_A_FRESH_PROCESS.format(tests=str(Path(__file__).parent))
    runs = [
        subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONHASHSEED": seed},
                       capture_output=True, text=True, check=True).stdout
        for seed in ("1", "2")
    ]
    assert runs[0] == runs[1] == to_dot(many_keyed_spec())
    assert "alpha=3" in runs[0]


def test_edges_are_labelled_with_ports_and_types():
    text = to_dot(reference_spec())
    assert '"crit" -> "rw" [label="feedback: Feedback"' in text
    assert '"input" -> "crit" [label="program → candidates: Candidates"' in text


def test_nodes_show_id_operator_kind_and_params_coloured_by_kind():
    text = to_dot(reference_spec())
    rw = _line(text, '"rw" [')
    assert "<B>rw</B>" in rw and "t_rewrite · llm" in rw and "k=2" in rw
    assert f'fillcolor="{dot_module.KIND_COLORS["llm"]}"' in rw
    assert f'fillcolor="{dot_module.KIND_COLORS["score"]}"' in _line(text, '"sel" [')
    assert f'fillcolor="{dot_module.KIND_COLORS["data"]}"' in _line(text, '"hist" [')
    assert "prompt override: rewrite" in rw


def test_entry_exit_and_legend_are_distinguishable():
    text = to_dot(reference_spec())
    assert '"input" [label="input", shape=cds' in text
    sel = _line(text, '"sel" [')
    assert "peripheries=2" in sel and "<B>exit</B>" in sel
    assert '"sel" -> "graphopt.output" [label="candidates: Candidates"' in text
    assert "node kinds" in _line(text, '"graphopt.legend" [')
    assert "peripheries" not in _line(text, '"rw" [')


def test_tooltips_summarise_default_and_edited_prompts():
    text = to_dot(reference_spec())
    crit_tip = _tooltip(_line(text, '"crit" ['))
    assert crit_tip.startswith("crit (t_critique, llm)")
    assert "prompt critique (default): Critique the program: {program} It failed on:" in crit_tip
    rw_tip = _tooltip(_line(text, '"rw" ['))
    assert 'prompt rewrite (override): Rewrite {program}. Use \\"{feedback}\\" \\\\ carefully.' in rw_tip


def test_long_prompts_are_cut_in_tooltips():
    data = reference_dict()
    data["nodes"][1]["prompts"] = {"rewrite": "{program} " + "word " * 200}
    tip = _tooltip(_line(to_dot(GraphSpec.model_validate(data)), '"rw" ['))
    edited = tip.split("prompt rewrite (override): ", 1)[1].split("\\n", 1)[0]
    assert len(edited) <= dot_module.PROMPT_CHARS and edited.endswith("…")


def test_invalid_graphs_are_drawn_with_problems_in_red():
    data = reference_dict()
    data["nodes"][0]["op"] = "nope"
    data["edges"].append({"source": "rw.feedback", "target": "sel.candidates"})
    text = to_dot(GraphSpec.model_validate(data))
    assert "nope · unknown operator" in _line(text, '"crit" [') and "dashed" in _line(text, '"crit" [')
    assert "unknown operator" in _line(text, '"graphopt.legend" [')
    assert 'label="feedback → candidates: ? into Candidates", color="#c0392b"' in text


@needs_dot
def test_awkward_names_and_prompts_are_escaped_for_dot(tmp_path: Path):
    spec = GraphSpec.model_validate(
        {
            "name": 'we"ird\\ name <b>',
            "description": "a & b < c",
            "nodes": [{"id": 'x"<y>\\', "op": "t_select", "params": {"k": 2}}],
            "edges": [{"source": "input.program", "target": 'x"<y>\\.candidates'}],
        }
    )
    svg = to_svg(spec)
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg


@needs_dot
@pytest.mark.parametrize(("suffix", "magic"), [(".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_render_writes_images_by_suffix(tmp_path: Path, suffix: str, magic: bytes):
    path = render(reference_spec(), tmp_path / f"g{suffix}")
    assert path.read_bytes().startswith(magic)


def test_render_writes_dot_without_the_binary(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(dot_module.shutil, "which", lambda name: None)
    path = render(reference_spec(), tmp_path / "g.dot")
    assert path.read_text() == to_dot(reference_spec())


def test_missing_dot_binary_is_a_clear_config_error(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(dot_module.shutil, "which", lambda name: None)
    with pytest.raises(ConfigError) as info:
        render(reference_spec(), tmp_path / "g.png")
    assert "install Graphviz (apt-get install graphviz) or write .dot" in str(info.value)
    assert GraphView(reference_spec())._repr_svg_() is None


def test_unknown_suffix_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"unknown suffix '.jpg' \(use .svg, .png, .pdf, .dot or .mmd\)"):
        render(reference_spec(), tmp_path / "g.jpg")


@needs_dot
def test_graph_view_shows_svg_in_notebooks():
    view = GraphView(reference_spec())
    assert "<svg" in view._repr_svg_()
    assert repr(view) == "GraphView('reference': 4 nodes, 8 edges)"


def _line(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(start))


def _tooltip(line: str) -> str:
    match = re.search(r'tooltip="((?:[^"\\]|\\.)*)"', line)
    assert match, line
    return match.group(1)


def test_mermaid_output_draws_without_graphviz_with_escaped_labels(tmp_path):
    from graphopt.graph.io import load_graph
    from graphopt.graph.spec import GraphSpec
    from graphopt.viz.dot import render

    path = render(load_graph("fewshot"), tmp_path / "g.mmd")
    text = path.read_text()
    assert text.splitlines()[:3] == ["flowchart LR", "  %% fewshot", '  input(["input"])']
    assert '  n0["<b>fewshot</b><br/>fewshot<br/>k=3, max_demos=3"]' in text
    assert '  input -->|"traces → traces"| n0' in text and '  n1 -->|"candidates"| output' in text
    tricky = GraphSpec.model_validate({
        "name": "q", "nodes": [{"id": "s", "op": "select", "params": {"ties": 'a"<b>'}}],
        "edges": [{"source": "input.program", "target": "s.candidates"}],
    })
    drawn = render(tricky, tmp_path / "q.mermaid").read_text()
    assert 'ties=a#quot;#lt;b#gt;"]' in drawn and 'a"<b>' not in drawn


def test_a_drawing_into_a_missing_folder_is_refused_not_created(tmp_path):
    from graphopt.errors import ConfigError
    from graphopt.graph.io import load_graph
    from graphopt.viz.dot import render

    with pytest.raises(ConfigError, match="does not exist"):
        render(load_graph("tgd"), tmp_path / "no" / "such" / "g.dot")
    assert not (tmp_path / "no").exists()
