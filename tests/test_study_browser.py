"""The study page of a real (scripted-model) study in headless Chromium: it opens with no console
error and no request, shows the result table with the transfer row and every cell, and is saved
as a screenshot in test-artifacts/ for a person to look at."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update"]

if not CHROMIUM.exists():
    pytest.skip(f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright package (pip install -e '.[test]')")


@pytest.fixture(scope="module")
def page_path(tmp_path_factory) -> Path:
    from graphopt.study import LocalCells, StudyStore, run_study, write_outputs
    from graphopt.testing import FakeModel
    from graphopt.testing.scripted_study import scripted_config, scripted_study
    from graphopt.testing.search_model import scripted_search

    out = tmp_path_factory.mktemp("study")
    study = scripted_study(seeds=[0, 1])
    with StudyStore.in_dir(out, study.name) as store:
        asyncio.run(run_study(study, store, LocalCells(scripted_config(), FakeModel(fn=scripted_search), 2), out))
        return write_outputs(study, store.cells(), out)["html"]


@pytest.fixture(scope="module")
def page(page_path):
    profile = tempfile.mkdtemp(prefix="graphopt-chromium-")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=FLAGS, viewport={"width": 1400, "height": 900}
        )
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda msg: problems.append(f"{msg.type}: {msg.text}") if msg.type in ("error", "warning") else None)
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        page.on("request", lambda req: problems.append(f"request: {req.url}") if not req.url.startswith(("file:", "data:")) else None)
        page.goto(page_path.resolve().as_uri())
        try:
            yield page, problems
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def test_the_study_page_opens_without_console_errors_or_requests(page):
    view, problems = page
    assert view.title() == "scripted: study"
    assert problems == []


def test_the_table_shows_each_task_and_method_with_the_transfer_row_beside_the_targets_baselines(page):
    view, _ = page
    rows = view.eval_on_selector_all("#study-table tbody tr", "rows => rows.map(r => [...r.cells].map(c => c.innerText))")
    assert len(rows) == 9
    dyck = [r[1] for r in rows if r[0] == "dyck_languages"]
    assert dyck == ["zero-shot", "few-shot", "tgd", "search", "search from word_sorting"]
    tgd = next(r for r in rows if r[:2] == ["word_sorting", "tgd"])
    assert tgd[2] == "2/2" and tgd[3].startswith("1.000") and tgd[4].startswith("+")
    assert view.is_visible("tr.transfer")
    assert view.eval_on_selector_all("#cell-table tbody tr", "rows => rows.length") == 18


def test_screenshot_of_the_study_page_is_saved(page):
    view, _ = page
    ARTIFACTS.mkdir(exist_ok=True)
    view.screenshot(path=str(ARTIFACTS / "study.png"), full_page=True)
    assert (ARTIFACTS / "study.png").stat().st_size > 10_000
