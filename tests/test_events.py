"""Typed events: each round-trips through its payload, and the payloads earlier versions wrote
(the same JSON, some keys missing) still load, so stored runs resume."""

from __future__ import annotations

import pytest

from datetime import datetime, timezone

from graphopt.store import EventRow
from graphopt.store.events import GenerationDone, InferenceCost, ProposalMade, ProposalRejected, RaceGraph, RaceRun, typed

EVENTS = [
    ProposalMade("gen1/child0", "c0004", "llm", {"levels": {"meta": {"calls": 1}}}),
    ProposalMade("prompt/c0001/r0/c0", "c0005", "prompt_opt"),
    ProposalRejected("gen1/child1", "mutation", ("no new graph", "x" * 900)),
    RaceRun("seeds", 6, "metric", "c0001", (RaceGraph("c0001", 0.5, {"e1": 1.0, "e2": 0.0}, True), RaceGraph("c0002", 0.0, {}, False, "worse"))),
    GenerationDone(0, 0.5, ("c0001", "c0002")),
    GenerationDone(1, 0.75, ("c0001",), ("c0006",), {"program": {"tokens": 10}}),
    InferenceCost("c0003", 3.0, 412.5),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_an_event_round_trips_through_its_payload(event):
    assert type(event).from_payload(event.to_payload()) == event


def test_payloads_keep_the_keys_and_order_earlier_versions_wrote():
    assert list(EVENTS[0].to_payload()) == ["key", "candidate", "kind", "usage"]
    assert list(EVENTS[1].to_payload()) == ["key", "candidate", "kind"]  # no usage key when there is none
    assert list(EVENTS[3].to_payload()) == ["key", "screen", "by", "leader", "graphs"]
    assert list(EVENTS[3].to_payload()["graphs"][0]) == ["candidate", "score", "scores", "promoted", "why"]
    assert list(EVENTS[4].to_payload()) == ["generation", "best", "population"]
    assert list(EVENTS[5].to_payload()) == ["generation", "best", "population", "children", "usage"]


def test_a_rejection_keeps_five_reasons_of_500_characters():
    rejected = ProposalRejected("k", "llm", tuple("r" * 600 for _ in range(7)))
    assert len(rejected.reasons) == 5 and {len(r) for r in rejected.reasons} == {500}


def test_old_payloads_load():
    assert ProposalMade.from_payload({"key": "gen1/child0", "candidate": "c0003", "kind": "mutation"}).usage is None
    race = RaceRun.from_payload({"key": "gen1", "screen": 3, "leader": None, "graphs": [{"candidate": "c0002", "scores": {"a": 1}}]})
    assert race.by == "metric" and race.graphs[0].scores == {"a": 1} and race.graphs[0].why == ""
    assert GenerationDone.from_payload({"generation": 0, "best": 0.2, "population": ["c0001"]}).children is None


AT = datetime(2026, 12, 5, tzinfo=timezone.utc)


def test_typed_reads_only_the_asked_kinds_and_skips_payloads_that_are_not_one():
    rows = [
        EventRow(id=1, at=AT, kind="inference", payload={"candidate": "c0001", "calls": 1, "tokens": 200}),  # as earlier versions wrote it
        EventRow(id=2, at=AT, kind="winner", payload={"why": "best on val"}),
        EventRow(id=3, at=AT, kind="inference", payload={"candidate": "c0002"}),  # no cost in it: skipped
        EventRow(id=4, at=AT, kind="inference", payload="not a mapping"),
        EventRow(id=5, at=AT, kind="generation", payload={"generation": 0, "best": 0.5, "population": ["c0001"]}),
    ]
    assert typed(rows, InferenceCost) == [InferenceCost("c0001", 1.0, 200.0)]
    assert typed(rows, GenerationDone, InferenceCost) == [InferenceCost("c0001", 1.0, 200.0), GenerationDone(0, 0.5, ("c0001",))]
    assert list(InferenceCost("c", 1.0, 2.0).to_payload()) == ["candidate", "calls", "tokens"]
