"""graphopt.graph.io: exact JSON/YAML round trips, built-in graphs, one-line errors, the schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from graph_fixtures import graph_test_operators, reference_dict, reference_spec  # noqa: F401  (registers the t_* operators here)
from hypothesis import given, settings
from hypothesis import strategies as st

from graphopt.errors import ConfigError, SpecError
from graphopt.graph import io
from graphopt.graph.io import (
    builtin_graph_names,
    dumps_graph,
    graph_from_dict,
    graph_json_schema,
    graph_to_dict,
    load_graph,
    loads_graph,
    save_graph,
)
from graphopt.graph.spec import GraphSpec, NodeSpec
from graphopt.graph.validate import validate


@pytest.mark.parametrize("suffix", [".json", ".yaml", ".yml"])
def test_round_trip_is_exact_as_data_and_as_spec(tmp_path: Path, suffix: str):
    data = reference_dict()
    source = tmp_path / f"source{suffix}"
    source.write_text(json.dumps(data) if suffix == ".json" else yaml.safe_dump(data))
    spec = load_graph(source)
    assert spec == reference_spec()
    saved = save_graph(spec, tmp_path / f"saved{suffix}")
    reread = json.loads(saved.read_text()) if suffix == ".json" else yaml.safe_load(saved.read_text())
    assert reread == data
    assert load_graph(saved) == spec


def test_saving_keeps_only_the_fields_given_plus_schema_version():
    data = {"name": "g", "nodes": [{"id": "a", "op": "t_merge"}], "edges": []}
    assert graph_to_dict(graph_from_dict(data)) == {**data, "schema_version": 1}


def test_yaml_writes_multiline_prompts_as_blocks(tmp_path: Path):
    text = save_graph(reference_spec(), tmp_path / "g.yaml").read_text()
    assert "rewrite: |-\n" in text  # the prompt has no trailing newline: a block that strips it
    assert load_graph(tmp_path / "g.yaml") == reference_spec()


@settings(max_examples=60, deadline=None)
@given(
    prompt=st.text(max_size=80),
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ),
    fmt=st.sampled_from(["json", "yaml"]),
)
def test_round_trip_is_exact_for_any_text_and_param_values(prompt, value, fmt):
    data = reference_dict()
    data["nodes"][1]["prompts"] = {"rewrite": prompt}
    data["nodes"][1]["params"] = {"anything": value}
    spec = graph_from_dict(data)
    text = dumps_graph(spec, fmt)
    text.encode("utf-8")  # always writable as UTF-8, even with lone surrogates
    again = loads_graph(text, fmt)
    assert again == spec
    assert graph_to_dict(again) == data


def test_wrong_structure_gives_one_problem_per_line_with_its_location():
    data = reference_dict()
    del data["nodes"][2]["op"]
    data["nodes"][0]["param"] = {}
    data["edges"][0]["source"] = 3
    with pytest.raises(SpecError) as info:
        graph_from_dict(data, origin="g.json")
    assert info.value.problems == [
        "g.json: nodes.0.param: unknown field (did you mean 'params'?)",
        "g.json: nodes.2.op: field required",
        "g.json: edges.0.source: input should be a valid string",
    ]


def test_structure_is_checked_strictly_without_coercion():
    data = reference_dict()
    data["schema_version"] = "1"
    with pytest.raises(SpecError, match=r"schema_version: input should be a valid integer"):
        graph_from_dict(data)


def test_unsupported_schema_version_is_a_one_line_error():
    with pytest.raises(SpecError) as info:
        graph_from_dict({**reference_dict(), "schema_version": 7}, origin="g.json")
    assert info.value.problems == ["g.json: unsupported schema_version 7 (this graphopt reads 1)"]


def test_many_problems_are_capped():
    data = {"name": "g", "nodes": [{"id": i} for i in range(50)], "edges": []}
    with pytest.raises(SpecError) as info:
        graph_from_dict(data)
    assert len(info.value.problems) == io.MAX_PROBLEMS + 1
    assert info.value.problems[-1].endswith("more problems")


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ('{"name": "g",\n "nodes": [,]}', "json", "<string>: not valid JSON: Expecting value (line 2, column 12)"),
        ("name: g\nnodes: [\n", "yaml", "<string>: not valid YAML:"),
        ("[1, 2]", "json", "top level, got list"),
        ("", "yaml", "got nothing (empty file)"),
        ('"just text"', "json", "got string"),
        ('{"name": NaN}', "json", "NaN is not a JSON number"),
        ("name: .inf\nnodes: []\nedges: []", "yaml", "name: inf is not a JSON number"),
        ("name: g\nwhen: 2024-01-01\nnodes: []\nedges: []", "yaml", "when: a date is not a JSON value"),
        ("name: g\n1: x\nnodes: []\nedges: []", "yaml", "key 1 is not a string"),
        ("a: 2024-13-45", "yaml", "not valid YAML: month must be in 1..12"),
        ("a: &a [*a]", "yaml", "nested more than"),
        ("a: !!python/object:os.system x", "yaml", "not valid YAML"),
        ("[" * 100_000, "json", "not valid JSON"),
        ("1" * 10_000, "json", "not valid JSON"),
    ],
)
def test_bad_text_is_a_one_line_spec_error(text, fmt, expected):
    with pytest.raises(SpecError) as info:
        loads_graph(text, fmt)
    assert len(info.value.problems) == 1
    assert "\n" not in info.value.problems[0]
    assert expected in info.value.problems[0]


def test_yaml_error_names_the_line():
    with pytest.raises(SpecError, match=r"\(line 3, column \d+\)"):
        loads_graph("name: g\nnodes:\n\t- a\n", "yaml")


def test_yaml_alias_bomb_is_rejected_quickly():
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    with pytest.raises(SpecError, match="too large"):
        loads_graph("\n".join(lines), "yaml")


def test_bytes_that_are_not_utf8_are_a_spec_error():
    with pytest.raises(SpecError, match="not UTF-8 text"):
        loads_graph(b'{"name": "\xff"}')


def test_bytes_with_a_bom_load():
    assert loads_graph(b"\xef\xbb\xbf" + json.dumps(reference_dict()).encode()) == reference_spec()


def test_missing_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="file not found: .*nope.json"):
        load_graph(tmp_path / "nope.json")


def test_unknown_extension_is_a_config_error(tmp_path: Path):
    (tmp_path / "g.txt").write_text("{}")
    with pytest.raises(ConfigError, match=r"unknown graph file type '.txt' \(use .json, .yaml or .yml\)"):
        load_graph(tmp_path / "g.txt")
    with pytest.raises(ConfigError):
        save_graph(reference_spec(), tmp_path / "g.txt")


def test_a_directory_is_not_a_graph_file(tmp_path: Path):
    (tmp_path / "d.json").mkdir()
    with pytest.raises(ConfigError, match="file not found"):
        load_graph(tmp_path / "d.json")


def test_unwritable_target_is_a_config_error(tmp_path: Path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="cannot write"):
        save_graph(reference_spec(), tmp_path / "file" / "g.json")


def test_unknown_builtin_name_suggests_close_names(monkeypatch):
    monkeypatch.setattr(io, "builtin_graph_names", lambda: ["tgd", "tgd_select"])
    with pytest.raises(ConfigError) as info:
        load_graph("tgdd")
    assert "no graph file or built-in graph named 'tgdd' (did you mean 'tgd'" in str(info.value)
    assert "(built-ins: tgd, tgd_select)" in str(info.value)


def test_builtin_graphs_load_and_validate():
    names = builtin_graph_names()
    assert {"tgd", "tgd_select", "ensemble", "opro", "fewshot"} <= set(names)
    for name in names:
        spec = load_graph(name)
        assert isinstance(spec, GraphSpec)
        assert validate(spec) == [], name


def test_an_existing_file_wins_over_a_builtin_name(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mygraph").write_text("{}")  # no suffix: not a graph file, so the name is looked up
    with pytest.raises(ConfigError, match="unknown graph file type"):
        load_graph("mygraph")


def test_json_schema_describes_graph_files_for_editors():
    schema = graph_json_schema()
    assert schema["$id"].startswith("urn:graphopt:graph-spec")
    assert schema["title"] == "graphopt graph"
    assert set(schema["required"]) == {"name", "nodes", "edges"}
    edge = schema["$defs"]["EdgeSpec"]["properties"]["source"]
    assert edge["pattern"] and "node.port" in edge["description"]
    json.dumps(schema)  # plain JSON


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_lone_surrogates_from_json_escapes_still_round_trip(fmt):
    spec = loads_graph('{"name": "\\ud800 x", "nodes": [], "edges": []}')
    text = dumps_graph(spec, fmt)
    text.encode("utf-8")
    assert loads_graph(text, fmt) == spec


def test_a_10_mb_prompt_saves_as_yaml_and_reads_back_exactly(tmp_path: Path):
    # Lines with trailing spaces, tabs and non-ASCII: the cases that push PyYAML off block style.
    prompt = ("Sort the words, then answer. \tÉtape {program}  \n" * 200_000)[:10_000_000]
    spec = GraphSpec(name="big", nodes=[NodeSpec(id="p", op="paraphrase", prompts={"paraphrase": prompt})], edges=[])
    path = save_graph(spec, tmp_path / "big.yaml")
    assert path.stat().st_size > 10_000_000
    assert load_graph(path) == spec
