"""The report of a real (scripted-model) search in real headless Chromium, driven by playwright.

No console errors (a blocked script or a CSP violation would show as one), the drawings are
visible, a header click sorts the table and a lineage click fills the side panel. Screenshots go
to test-artifacts/ (gitignored) for a person to look at.

Needs Debian's Chromium (`apt-get install chromium`) and the `playwright` package (the `test`
extra); playwright's own browser downloads are not used.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    pytest.skip(f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A small search on the scripted model, and its report (written by the caller, as the CLI does)."""
    from search_fakes import scripted

    from graphopt.graph.io import load_graph
    from graphopt.lm import LM, LMConfig
    from graphopt.testing import FakeModel
    from graphopt.search.budgets import get_budget
    from graphopt.search.pipeline import run_search
    from graphopt.tasks import get_task

    out = tmp_path_factory.mktemp("search") / "run"
    task = get_task("word_sorting", difficulty="easy", sizes=(12, 10, 10), seed=3)
    lm = LM(LMConfig(cache_dir=None), transport=FakeModel(fn=scripted))
    budget = get_budget("tiny", val_limit=6, test_limit=6, minibatch=3)
    asyncio.run(run_search(task, lm, budget, out, [load_graph("tgd"), load_graph("tgd_select")]))
    from graphopt.viz.report import write_report

    write_report(out)
    assert (out / "report.html").is_file()
    return out


@pytest.fixture(scope="module")
def browser(run_dir):  # after the search: playwright's sync API keeps an event loop running, asyncio.run would refuse
    profile = tempfile.mkdtemp(prefix="graphopt-chromium-")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS, viewport={"width": 1400, "height": 1000}
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def _open(browser, path: Path):
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}") if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("request", lambda req: problems.append(f"request: {req.url}") if not req.url.startswith(("file:", "data:")) else None)
    page.goto(path.resolve().as_uri())
    page.wait_for_selector("#panel-body h3")  # the script ran and selected the winner
    return page, problems


@pytest.fixture(scope="module")
def report(browser, run_dir):
    page, problems = _open(browser, run_dir / "report.html")
    yield page, problems
    page.close()


def _row_ids(page) -> list[str]:
    return page.eval_on_selector_all("#cand-table tbody tr", "rows => rows.map(r => r.dataset.cid)")


def test_report_opens_without_console_errors_or_requests(report):
    page, problems = report
    assert page.title().startswith("graphopt report: word_sorting")
    assert problems == []


def test_best_graph_lineage_and_both_plots_are_visible(report):
    page, _ = report
    for selector in ("#winner svg.bestgraph", "svg.lineage", "svg.chart.scores", "svg.chart.pareto", "#cand-table"):
        element = page.locator(selector)
        assert element.is_visible(), selector
        box = element.bounding_box()
        # A winner of one or two nodes is drawn as a short strip; everything else is a panel.
        low = 60 if selector == "#winner svg.bestgraph" else 100
        assert box and box["width"] > 100 and box["height"] > low, (selector, box)
    assert page.locator("svg.chart.pareto circle.pt.front").count() >= 1


def test_clicking_a_header_sorts_the_rows_and_again_reverses_them(report):
    page, _ = report
    before = _row_ids(page)
    totals = dict(zip(before, page.eval_on_selector_all("#cand-table tbody td:nth-child(11)", "cells => cells.map(c => Number(c.dataset.v))")))
    header = page.locator("#cand-table thead th", has_text="total")
    header.click()
    ascending = _row_ids(page)
    assert ascending == sorted(before, key=lambda cid: (totals[cid], before.index(cid)))
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    descending = _row_ids(page)
    assert [totals[c] for c in descending] == sorted(totals.values(), reverse=True)
    page.locator("#cand-table thead th", has_text="id").click()
    assert _row_ids(page) == before  # sorting by id restores the search's order


def test_clicking_a_lineage_box_shows_that_candidate_in_the_side_panel(report):
    page, _ = report
    winner = page.locator("#panel-body h3").inner_text()
    other = page.eval_on_selector_all("svg.lineage g.cand:not(.winner)", "gs => gs.map(g => g.dataset.cid)")[-1]
    page.locator(f'svg.lineage g.cand[data-cid="{other}"]').click()
    panel = page.locator("#panel-body")
    assert panel.locator("h3").inner_text().startswith(other) and panel.locator("h3").inner_text() != winner
    assert panel.locator("svg.mini").is_visible()
    assert "val" in panel.inner_text() and "parents" in panel.inner_text()
    assert page.locator(f'#cand-table tr[data-cid="{other}"]').get_attribute("class").endswith("selected")
    page.locator("#panel-body button.link").first.click()  # a parent link selects the parent
    assert not panel.locator("h3").inner_text().startswith(other)


def test_numbers_sort_as_numbers_and_hostile_text_stays_text(browser, tmp_path):
    from test_report import SCRIPT_ATTACK, make_store

    from graphopt.viz.report import write_report

    make_store(tmp_path)
    page, problems = _open(browser, write_report(tmp_path))
    try:
        page.locator("#cand-table thead th", has_text="total").click()
        # 0 < 600 < 900 < ... < 1,300, then the pending one: not "1,100" before "600" as text would sort
        assert _row_ids(page) == ["c0007", "c0001", "c0002", "c0003", "c0005", "c0004", "c0006", "c0008"]
        assert page.locator("#panel-body pre").last.inner_text() == SCRIPT_ATTACK  # shown, not run
        assert page.evaluate("() => document.querySelectorAll('script').length") == 2
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report-fixed-store.png"), full_page=True)
        assert problems == []
    finally:
        page.close()


def test_screenshot_of_the_report_is_saved(report):
    page, _ = report
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "report.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 20_000
