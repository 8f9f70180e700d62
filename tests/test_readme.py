"""The README's Python example runs as written (on a scripted model instead of the embedded one)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import graphopt.lm
from graphopt.lm import LM
from graphopt.testing import FakeModel

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs_and_saves_a_valid_graph(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python example"
    fake = FakeModel(fn=lambda messages: json.dumps({"instruction": "Close every open bracket, in order."}))
    monkeypatch.setattr(graphopt.lm, "LM", lambda *a, **k: LM(transport=fake, cache_dir=None))
    monkeypatch.chdir(tmp_path)

    exec(compile(blocks[0], str(README), "exec"), {})

    from graphopt.graph import check, load_graph

    assert check(load_graph(tmp_path / "mine.graph.json")).name == "critique_or_paraphrase"
    assert fake.calls > 0
    assert capsys.readouterr().out.strip()  # printed best_val and the instruction
