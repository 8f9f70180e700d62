"""LLM-guided proposals with the scripted fake model: accept, repair once, reject with reasons."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
from search_fixtures import registered_test_operators, seed_graphs

from graphopt.errors import BudgetExceeded
from graphopt.graph.validate import canonical_hash, validate
from graphopt.lm import LM, Budget, Caps, LMConfig
from graphopt.testing import FakeModel
from graphopt.search.archive import Archive, Scored
from graphopt.search.llm_mutation import (
    LLMProposal,
    graph_proposal_schema,
    operator_catalogue,
    spec_from_proposal,
    spec_to_proposal,
)


@pytest.fixture(autouse=True, scope="module")
def _operators():
    with registered_test_operators():
        yield


VALID = {
    "rationale": "Pool a paraphrase with a rewrite and keep the best.",
    "name": "para rewrite",
    "nodes": [
        {"id": "p", "op": "s_paraphrase", "params": [{"name": "n", "value": "2"}]},
        {"id": "r", "op": "s_rewrite", "params": [{"name": "temperature", "value": "0.9"}]},
        {"id": "j", "op": "s_ensemble", "params": [{"name": "mode", "value": "union"}]},
    ],
    "edges": [
        {"source": "input.program", "target": "p.candidates"},
        {"source": "input.program", "target": "r.candidates"},
        {"source": "p.candidates", "target": "j.candidates"},
        {"source": "r.candidates", "target": "j.candidates"},
    ],
}
INVALID = {**VALID, "edges": VALID["edges"][:2] + [{"source": "p.candidates", "target": "r.feedback"}]}


def _lm(replies, **kwargs) -> tuple[LM, FakeModel]:
    fake = FakeModel(replies=replies)
    return LM(config=LMConfig(max_retries=0), transport=fake, cache_dir=None, **kwargs), fake


def _archive() -> Archive:
    tgd, tgd_select = seed_graphs()[:2]
    return Archive([Scored.of(tgd, 0.41, 5200), Scored.of(tgd_select, 0.55, 9100)])


def _propose(lm: LM, parents=None, archive=None, seed=0):
    parents = seed_graphs()[1:2] if parents is None else parents
    archive = _archive() if archive is None else archive
    return asyncio.run(LLMProposal(lm).propose_graph(parents, archive, random.Random(seed)))


def test_a_valid_proposal_is_accepted_at_the_meta_level_with_a_json_schema():
    lm, fake = _lm([json.dumps(VALID)])
    proposal = _propose(lm)
    assert proposal.accepted and proposal.attempts == 1 and proposal.rejected_reasons == []
    spec = proposal.spec
    assert validate(spec) == []
    assert spec.name == "llm-para_rewrite" and spec.description == VALID["rationale"]
    assert spec.node("p").params == {"n": 2} and spec.node("r").params == {"temperature": 0.9}
    assert spec.provenance.mutation == "llm"
    assert spec.provenance.parents == [canonical_hash(seed_graphs()[1])]
    request = fake.requests[0]
    assert request.response_format["type"] == "json_schema"
    assert request.response_format["json_schema"]["name"] == "graph_spec"
    assert lm.ledger.level("meta").calls == 1


def test_an_invalid_proposal_then_a_valid_repair_is_accepted_after_one_repair():
    lm, fake = _lm([json.dumps(INVALID), json.dumps(VALID)])
    proposal = _propose(lm)
    assert proposal.accepted and proposal.attempts == 2
    assert len(proposal.rejected_reasons) == 1 and "feedback" in proposal.rejected_reasons[0]
    repair = fake.requests[1].messages
    assert repair[-2] == {"role": "assistant", "content": json.dumps(INVALID)}
    assert "cannot be used" in repair[-1]["content"] and "expects Feedback" in repair[-1]["content"]


def test_two_invalid_proposals_are_rejected_with_both_reasons():
    lm, fake = _lm([json.dumps(INVALID), json.dumps(INVALID)])
    proposal = _propose(lm)
    assert proposal.spec is None and proposal.attempts == 2 and fake.calls == 2
    assert len(proposal.rejected_reasons) == 2 and all("Feedback" in r for r in proposal.rejected_reasons)


def test_max_repairs_zero_rejects_after_the_first_reply():
    lm, fake = _lm([json.dumps(INVALID), json.dumps(VALID)])
    proposal = asyncio.run(LLMProposal(lm, max_repairs=0).propose_graph([], Archive(), random.Random(0)))
    assert proposal.spec is None and fake.calls == 1


def test_junk_text_is_rejected_and_never_executed():
    junk = "__import__('os').system('touch /tmp/pwned') -- sure, here is a graph!"
    lm, _ = _lm([junk, "still no json"])
    proposal = _propose(lm)
    assert proposal.spec is None
    assert proposal.rejected_reasons == ["the reply contains no JSON object"] * 2


def test_a_reply_cut_off_mid_json_is_rejected_as_incomplete():
    lm, _ = _lm([json.dumps(VALID)[:150]] * 2)
    proposal = _propose(lm)
    assert proposal.spec is None and "not complete JSON" in proposal.rejected_reasons[0]


def test_json_inside_prose_or_fences_is_read():
    lm, _ = _lm(["Here you go:\n```json\n" + json.dumps(VALID) + "\n```"])
    assert _propose(lm).accepted


def test_a_graph_already_in_the_archive_is_sent_back():
    tgd = seed_graphs()[0]
    lm, fake = _lm([json.dumps(spec_to_proposal(tgd)), json.dumps(VALID)])
    proposal = _propose(lm)
    assert proposal.accepted and proposal.attempts == 2
    assert "already tried" in proposal.rejected_reasons[0] and "s_tgd" in proposal.rejected_reasons[0]


def test_the_prompt_holds_the_archive_summary_the_catalogue_and_the_parents():
    lm, fake = _lm([json.dumps(VALID)])
    archive = _archive()
    _propose(lm, archive=archive)
    prompt = "\n".join(m["content"] for m in fake.requests[0].messages)
    assert archive.summary() in prompt
    assert operator_catalogue() in prompt
    assert "s_rewrite (llm): Rewrites a program" in prompt
    assert "feedback: Feedback (optional)" in prompt and "k=1 [1..5]" in prompt
    assert "mode='union' [union|combine]" in prompt
    assert "val=0.550" in prompt and "tokens=9.1k" in prompt
    assert "Parent 1: s_tgd_select (val=0.550" in prompt


def test_a_failed_model_call_is_a_rejection_but_a_budget_stop_propagates():
    def boom(messages):
        raise TimeoutError("server down")  # retryable, so not fatal: it outlives max_retries=0

    lm = LM(config=LMConfig(max_retries=0), transport=FakeModel(fn=boom), cache_dir=None)
    proposal = _propose(lm)
    assert proposal.spec is None and "model call failed" in proposal.rejected_reasons[0]
    capped, _ = _lm([json.dumps(VALID)], budget=Budget(levels={"meta": Caps(calls=0)}))
    with pytest.raises(BudgetExceeded):
        _propose(capped)


def test_the_schema_is_grammar_friendly_and_lists_the_operators():
    schema = graph_proposal_schema()
    text = json.dumps(schema)
    assert "$ref" not in text and "$defs" not in text and "anyOf" not in text
    node = schema["properties"]["nodes"]["items"]
    assert "s_rewrite" in node["properties"]["op"]["enum"]


def test_the_schema_compiles_to_a_llama_cpp_grammar():
    grammar = pytest.importorskip("llama_cpp.llama_grammar")
    gbnf = grammar.json_schema_to_gbnf(json.dumps(graph_proposal_schema()))
    assert '"\\"s_rewrite\\""' in gbnf


def test_spec_to_proposal_round_trips_through_spec_from_proposal():
    for graph in seed_graphs():
        spec, problems = spec_from_proposal(spec_to_proposal(graph))
        assert problems == [] and canonical_hash(spec) == canonical_hash(graph)


def test_spec_from_proposal_names_malformed_parts():
    assert spec_from_proposal([1, 2])[1] == ["the reply is not a JSON object with 'nodes' and 'edges'"]
    spec, problems = spec_from_proposal({"nodes": [{"id": 3}], "edges": [{"source": "a"}]})
    assert spec is None and len(problems) == 2
    spec, problems = spec_from_proposal({**VALID, "nodes": [{"id": "p", "op": "t_paraphrse", "params": []}]})
    assert spec is None and any("did you mean" in p for p in problems)
