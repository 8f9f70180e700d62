"""A search against a fault-injecting OpenAI-compatible server on 127.0.0.1 (real HTTP, real retries).

The fault server is the one of `benchmarks/faults.py`; these are its two sharpest cases.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
faults = pytest.importorskip("faults")


@pytest.fixture(autouse=True)
def _key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", faults.KEY)


def test_twenty_percent_faults_give_the_clean_runs_store_and_winner(tmp_path):
    with faults.FaultyServer(0.0, 0) as server:
        clean = faults.search(server, tmp_path / "clean")
    with faults.FaultyServer(0.2, 1) as server:
        faulty = faults.search(server, tmp_path / "faulty")
        injected = server.injected
    assert injected > 10
    assert faulty == clean and clean[0] == "finished"
    assert faults.contents(tmp_path / "faulty") == faults.contents(tmp_path / "clean")


def test_a_bad_key_stops_the_search_at_once_with_nothing_done_and_no_key_stored(tmp_path):
    with faults.FaultyServer(0.0, 0, persistent=401) as server:
        outcome, detail = faults.search(server, tmp_path / "run")
        requests = server.calls
    assert outcome == "LLMError" and "401" in detail and "OPENAI_API_KEY" in detail
    assert faults.KEY not in detail
    assert requests <= 16  # the calls already in flight, no retries of a 401
    assert not any(status == "done" for _, _, status, _ in faults.contents(tmp_path / "run"))
    assert faults.KEY.encode() not in (tmp_path / "run" / "run.sqlite").read_bytes()
