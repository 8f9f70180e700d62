"""The dry run of `graphopt search` counts the seed graphs it is given, from their nodes."""

from __future__ import annotations

from graphopt.cli import main
from graphopt.graph.io import load_graph, save_graph


def test_the_dry_run_of_a_seed_file_counts_that_files_graph(tmp_path, capsys) -> None:
    def program_calls(*args: str) -> int:
        assert main(["search", "--task", "word_sorting", "--budget", "tiny", "--dry-run", *args]) == 0
        row = next(line for line in capsys.readouterr().out.splitlines() if "program" in line and "│" in line)
        return int(row.split("│")[3].strip().replace(",", ""))

    spec = load_graph("fewshot")
    nodes = [n.model_copy(update={"params": {**n.params, "k": 12}}) if n.op == "fewshot" else n for n in spec.nodes]
    wide = save_graph(spec.model_copy(update={"nodes": nodes, "name": "wide"}), tmp_path / "wide.json")
    assert program_calls("--seed-graph", str(wide)) > program_calls("--seed-graph", "fewshot")
