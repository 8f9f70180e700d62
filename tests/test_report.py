"""The HTML report of a fixed run store: self-contained, complete, escaped, and `graphopt report`/`viz --run`.

The store is written through the RunStore API with fixed contents: two seeds, prompt-tuned
versions, a mutation (the winner), a crossover, an LLM proposal that failed and a pending one.
Prompts, names and the winner's program carry hostile text that must come out escaped.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from graphopt.cli import main
from graphopt.graph.io import load_graph
from graphopt.operators.registry import get_operator
from graphopt.store import RunStore
from graphopt.viz import dot as dot_module
from graphopt.viz.report import build_report, candidate_spec, write_report
from graphopt.viz.report_assets import lineage_columns, pareto_front

SCRIPT_ATTACK = "</script><script>alert(1)</script>"
NAME_ATTACK = "<img src=x onerror=alert(2)>"
ADDED_LINE = "Be specific about alphabetical order."
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs the Graphviz `dot` program")


def _spec(name: str, base: str = "tgd", prompts: dict | None = None, **params) -> dict:
    spec = load_graph(base).model_dump(mode="json")
    spec["name"] = name
    for node in spec["nodes"]:
        node["prompts"].update((prompts or {}).get(node["id"], {}))
        node["params"].update(params.get(node["id"], {}))
    return spec


def make_store(run_dir: Path, *, finished: bool = True) -> None:
    """The fixed run: c0005 wins; c0007 failed; c0008 is pending (the run was cut off there)."""
    critique = get_operator("critique").prompts["critique"].text
    tuned = {"critique": {"critique": critique + "\n" + ADDED_LINE}}
    hostile = {"rewrite": {"rewrite": "Rewrite the instruction.\n" + SCRIPT_ATTACK}}
    store = RunStore.open(run_dir)
    store.ensure_run({"task": "word_sorting", "task_source": "generated", "models": {"program": "gpt-4o-mini", "optimizer": "gpt-4o", "meta": "o1"}, "budget": {"name": "tiny"}})
    rows = [  # (spec, parents, origin, mutation, generation, val, test, tokens (program, optimizer, meta), dollars)
        (_spec("tgd"), [], "seed", None, 0, 0.5, 0.45, (400, 200, 0), 0.01),
        (_spec("tgd_select", "tgd_select"), [], "seed", None, 0, 0.6, 0.55, (500, 400, 0), 0.02),
        (_spec("tgd+prompts", prompts=tuned), ["c0001"], "prompt_opt", "meta_prompt", 0, 0.7, None, (400, 220, 300), 0.03),
        (_spec(NAME_ATTACK, "tgd_select"), ["c0002"], "prompt_opt", "meta_prompt", 0, 0.55, None, (500, 420, 300), 0.04),
        (_spec("tgd+k3", prompts={**tuned, **hostile}, rewrite={"k": 3}), ["c0003"], "mutation", "set_param", 1, 0.8, 0.75, (600, 500, 0), 0.05),
        (_spec("cross", "tgd_select", prompts=tuned), ["c0003", "c0004"], "crossover", "subgraph_crossover", 1, 0.65, None, (900, 400, 0), 0.06),
        (_spec("llm_graph", rewrite={"k": 2}), ["c0005"], "llm", "llm_proposal", 2, None, None, None, None),
        (_spec("tgd+k4", prompts=tuned, rewrite={"k": 4}), ["c0005"], "mutation", "set_param", 2, None, None, None, None),
    ]
    for i, (spec, parents, origin, mutation, generation, val, test, tokens, dollars) in enumerate(rows, 1):
        row = store.add_candidate(spec, f"hash{i}", parents=parents, origin=origin, mutation=mutation, generation=generation)
        if val is not None:
            program = {"instruction": SCRIPT_ATTACK if row.id == "c0005" else "Sort the words.", "demos": []}
            if row.id == "c0005":  # the winner won by its demos, one of them hostile
                program["demos"] = [{"input": "List: pear apple", "output": "apple pear"},
                                    {"input": SCRIPT_ATTACK, "output": "x" * 1000}]
            usage = {"levels": {level: {"tokens": n} for level, n in zip(("program", "optimizer", "meta"), tokens)},
                     "total": {"cost": dollars}}
            store.finish_evaluation(row.id, val_score=val, val_stderr=0.05, program=program, usage=usage)
            if test is not None:
                store.set_test_score(row.id, test)
    store.fail_evaluation("c0007", "BudgetExceeded: meta token budget of 1000 reached")
    store.add_event("generation", {"generation": 0, "best": 0.7, "population": ["c0003", "c0002", "c0001"]})
    store.add_event("rejected_proposal", {"kind": "llm", "reasons": [SCRIPT_ATTACK]})
    store.add_event("generation", {"generation": 1, "best": 0.8, "population": ["c0005", "c0003", "c0006"], "children": ["c0005", "c0006"]})
    for level, tokens in (("program", 3700), ("optimizer", 2140), ("meta", 600)):
        store.record_usage(level, {"calls": 10, "prompt_tokens": tokens - 100, "completion_tokens": 100, "cost": tokens / 100000})
    if finished:
        store.add_event("stop", {"reason": "reached 2 generations", "best": "c0005"})
        store.set_summary({"best": "c0005", "best_name": "tgd+k3", "stop_reason": "reached 2 generations"})
        store.set_status("finished")
    store.close()


class _Page(HTMLParser):
    """Collects what the tests look at: table rows, lineage boxes, charts, script blocks, links."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.boxes: list[str] = []
        self.svgs: list[str] = []
        self.scripts: list[dict] = []
        self.urls: list[str] = []
        self.data_block = ""
        self._in_data = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href", "xlink:href", "action") and v]
        if tag == "tr" and "data-cid" in a:
            self.rows.append(a["data-cid"])
        if tag == "g" and "cand" in (a.get("class") or "").split():
            self.boxes.append(a["data-cid"])
        if tag == "svg":
            self.svgs.append(a.get("class") or "")
        if tag == "script":
            self.scripts.append(a)
            self._in_data = a.get("type") == "application/json"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_data = False

    def handle_data(self, data):
        if self._in_data:
            self.data_block += data


@pytest.fixture(scope="module")
def finished_html(tmp_path_factory) -> str:
    run_dir = tmp_path_factory.mktemp("finished")
    make_store(run_dir)
    return write_report(run_dir).read_text(encoding="utf-8")


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def test_report_is_self_contained_without_external_resources(finished_html):
    page = _parse(finished_html)
    assert not [u for u in page.urls if re.match(r"\s*(https?:)?//", u)]
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", finished_html)
    assert "<link" not in finished_html and "@import" not in finished_html
    assert all("src" not in attrs for attrs in page.scripts)  # every script is inline
    assert "default-src 'none'" in finished_html  # the page may not fetch anything


def test_header_names_the_winner_its_scores_models_and_stop_reason(finished_html):
    header = finished_html.split("</header>")[0]
    winner_card = header.split('class="card win"')[1].split('class="card')[0]
    assert "Winner" in winner_card and "tgd+k3" in winner_card and "c0005" in winner_card
    assert "0.800 ± 0.050" in winner_card and "0.750" in winner_card
    assert "reached 2 generations" in header and "finished" in header
    for model in ("gpt-4o-mini", "gpt-4o", "o1"):
        assert f'<td class="model">{model}</td>' in header
    assert "6,440 tokens" in header  # usage totals of all levels


def test_table_has_one_row_per_candidate_with_sort_keys(finished_html):
    page = _parse(finished_html)
    assert page.rows == [f"c000{i}" for i in range(1, 9)]
    row = finished_html.split('<tr class="winner st-done" data-cid="c0005">')[1].split("</tr>")[0]
    assert '<td data-v="0.8">0.800 <small class="muted">± 0.050</small></td>' in row and '<td data-v="600">600</td>' in row
    pending = finished_html.split('<tr class="st-pending" data-cid="c0008">')[1].split("</tr>")[0]
    assert '<td data-v="">pending</td>' in pending and "—" in pending


def test_json_data_block_parses_and_keeps_every_string_exact(finished_html):
    page = _parse(finished_html)
    assert len(page.scripts) == 2 and page.scripts[0]["type"] == "application/json"
    data = json.loads(page.data_block)
    assert data["winner"] == "c0005" and data["final"] is True
    assert [c["id"] for c in data["candidates"]] == page.rows
    by_id = {c["id"]: c for c in data["candidates"]}
    assert by_id["c0005"]["instruction"] == SCRIPT_ATTACK and by_id["c0004"]["name"] == NAME_ATTACK
    assert by_id["c0006"]["parents"] == ["c0003", "c0004"] and by_id["c0005"]["children"] == ["c0007", "c0008"]
    assert "</" not in page.data_block


def test_hostile_text_from_the_store_is_escaped_everywhere(finished_html):
    assert SCRIPT_ATTACK not in finished_html and NAME_ATTACK not in finished_html
    assert "<script>alert" not in finished_html and "<img" not in finished_html
    assert finished_html.count("<script") == 2
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in finished_html  # the prompt, shown as text
    assert "&lt;img src=x onerror=alert(2)&gt;" in finished_html  # the name, in the table


def test_prompt_panel_diffs_the_winner_against_its_seed_ancestor(finished_html):
    section = finished_html.split('<section id="prompts">')[1].split("</section>")[0]
    assert "compared with its seed ancestor c0001 (tgd)" in section
    critique = section.split("prompt <b>critique</b>")[1].split("</details>")[0]
    assert '<span class="tag override">override</span>' in critique and "+1 −0 lines vs c0001" in critique
    assert re.search(r'<span class="ln add"><span class="mark"[^>]*>\+</span>' + re.escape(ADDED_LINE) + "</span>", critique)
    assert "Explain briefly why the program fails" in critique  # the full text, not only the change
    rewrite = section.split("prompt <b>rewrite</b>")[1].split("</details>")[0]
    assert '<span class="ln add">' in rewrite and '<span class="ln del">' in rewrite  # replaced lines both ways
    feedback = section.split("prompt <b>feedback</b>")[1].split("</details>")[0]
    assert '<span class="tag default">default</span>' in feedback and "same as c0001" in feedback


def test_winner_chain_lineage_and_plots_are_drawn(finished_html):
    chain = finished_html.split('<div class="chain"')[1].split("</div>")[0]
    assert chain.index('data-cid="c0001"') < chain.index("meta_prompt") < chain.index('data-cid="c0003"') < chain.index('data-cid="c0005"')
    page = _parse(finished_html)
    assert sorted(page.boxes) == page.rows  # a clickable box per candidate
    lineage = finished_html.split('<svg class="lineage"')[1].split("</svg>")[0]
    for label in ("meta_prompt", "set_param", "subgraph_crosso", "llm_proposal"):
        assert f">{label}" in lineage
    assert lineage.count('class="edge hot"') == 2  # c0001 -> c0003 -> c0005, the winner's ancestry
    assert any("chart scores" in c for c in page.svgs) and any("chart pareto" in c for c in page.svgs)
    pareto = finished_html.split('<svg class="chart pareto"')[1].split("</svg>")[0]
    assert re.search(r'class="pt front win" data-cid="c0005"', pareto)


@needs_dot
def test_best_graph_is_drawn_by_graphviz_with_prompt_tooltips(finished_html):
    drawing = finished_html.split('<div class="drawing">')[1].split("</svg>")[0]
    assert drawing.startswith('<svg class="bestgraph"') and "<?xml" not in finished_html
    assert "prompt critique (override)" in drawing


def test_best_graph_falls_back_to_own_drawing_without_graphviz(tmp_path, monkeypatch):
    make_store(tmp_path)
    monkeypatch.setattr(dot_module.shutil, "which", lambda name: None)
    with RunStore.open(tmp_path, create=False) as store:
        text = build_report(store)
    drawing = text.split('<div class="drawing">')[1].split("</svg>")[0]
    assert "Drawn without Graphviz" in drawing and 'class="bestgraph fallback"' in drawing and ">critique<" in drawing


def test_report_of_a_running_run_shows_best_so_far_and_pending(tmp_path):
    make_store(tmp_path, finished=False)
    text = write_report(tmp_path, tmp_path / "out" / "r.html").read_text(encoding="utf-8")
    header = text.split("</header>")[0]
    assert '<span class="status st-running">running</span>' in header and "Best so far" in header
    assert "c0005" in header and "not yet" in header and "1 pending" in header and "1 failed" in header
    assert json.loads(_parse(text).data_block)["final"] is False


def test_report_of_a_run_without_candidates_renders(tmp_path):
    with RunStore.open(tmp_path) as store:
        store.ensure_run({"task": "dyck_languages", "models": {}})
    text = write_report(tmp_path).read_text(encoding="utf-8")
    assert "none yet" in text and "No candidate has been scored yet." in text and json.loads(_parse(text).data_block)["candidates"] == []


def test_lineage_columns_put_children_right_of_parents_and_generations_in_order():
    cands = [
        {"id": "a", "generation": 0, "parents": []},
        {"id": "b", "generation": 0, "parents": ["a"]},
        {"id": "c", "generation": 1, "parents": ["a"]},
        {"id": "d", "generation": 2, "parents": ["c", "b"]},
    ]
    assert lineage_columns(cands) == {"a": 0, "b": 1, "c": 2, "d": 3}


def test_pareto_front_keeps_the_points_nothing_beats_on_cost_and_score():
    points = [("a", 100, 0.5), ("b", 200, 0.5), ("c", 150, 0.7), ("d", 300, 0.9), ("e", 300, 0.6)]
    assert pareto_front(points) == ["a", "c", "d"]


def test_report_command_writes_the_file_and_exits_0(tmp_path, capsys):
    make_store(tmp_path)
    assert main(["report", str(tmp_path)]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'report.html'}\n"
    assert main(["report", str(tmp_path), "-o", str(tmp_path / "x.html")]) == 0
    assert (tmp_path / "x.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_command_on_a_missing_run_dir_prints_one_line_and_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"error: no run directory {tmp_path / 'nope'}\n"
    assert main(["report", str(tmp_path)]) == 2  # a directory without a store
    err = capsys.readouterr().err
    assert err.startswith("error: no run store in") and err.count("\n") == 1


def test_viz_draws_any_candidate_of_a_run(tmp_path, capsys):
    make_store(tmp_path)
    assert main(["viz", "--run", str(tmp_path), "--candidate", "c0006", "-o", str(tmp_path / "c6.dot")]) == 0
    assert (tmp_path / "c6.dot").read_text().startswith('digraph "cross"')
    assert main(["viz", "--run", str(tmp_path), "-o", str(tmp_path / "best.dot")]) == 0  # the winner by default
    assert (tmp_path / "best.dot").read_text().startswith('digraph "tgd+k3"')
    assert candidate_spec(tmp_path, "hash2").name == "tgd_select"  # a graph hash works too


def test_viz_with_an_unknown_candidate_or_run_dir_exits_2_with_one_line(tmp_path, capsys):
    make_store(tmp_path)
    capsys.readouterr()
    assert main(["viz", "--run", str(tmp_path), "--candidate", "c005", "-o", str(tmp_path / "x.svg")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: no candidate 'c005' in {tmp_path} (did you mean 'c0005'") and err.count("\n") == 1
    assert main(["viz", "--run", str(tmp_path / "gone"), "--candidate", "c0001", "-o", str(tmp_path / "x.svg")]) == 2
    assert capsys.readouterr().err == f"error: no run directory {tmp_path / 'gone'}\n"
    assert main(["viz", "tgd", "--run", str(tmp_path), "-o", str(tmp_path / "x.svg")]) == 2
    assert capsys.readouterr().err.startswith("error: give either GRAPH or --run")


def test_the_report_of_a_pipeline_run_names_its_winner(tmp_path):
    from search_fakes import scripted

    from graphopt.lm import LM, LMConfig

    from graphopt.testing import FakeModel
    from graphopt.search.budgets import get_budget
    from graphopt.search.pipeline import run_search
    from graphopt.tasks import get_task

    task = get_task("word_sorting", difficulty="easy", sizes=(12, 10, 10), seed=3)
    lm = LM(LMConfig(cache_dir=None), transport=FakeModel(fn=scripted))
    budget = get_budget("tiny", val_limit=6, test_limit=6, minibatch=3)
    from graphopt.viz.report import write_report

    report = asyncio.run(run_search(task, lm, budget, tmp_path / "run", [load_graph("tgd")]))
    assert not (tmp_path / "run" / "report.html").exists()  # the caller (the CLI) writes pictures
    write_report(tmp_path / "run")
    text = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert '<span class="status st-finished">finished</span>' in text
    assert json.loads(_parse(text).data_block)["winner"] == report.best.candidate_id


def test_the_winner_section_shows_the_demos_that_won_cut_and_escaped(finished_html):
    winner = finished_html.split('<section id="winner">', 1)[1].split("</section>", 1)[0]
    assert "Its demos" in winner and "2 demos" in winner
    assert "<span class=\"muted\">input</span> List: pear apple" in winner and "apple pear" in winner
    assert "&lt;/script&gt;&lt;script&gt;alert(1)" in winner and SCRIPT_ATTACK not in winner
    assert "x" * 397 + "..." in winner and "x" * 401 not in winner

