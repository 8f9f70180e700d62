"""Retrieval by meaning: programs whose demos are the pool examples nearest by an embedding model's
vectors, through the fake model, an OpenAI-compatible server and the embedded model."""

from __future__ import annotations

import asyncio
import os

import pytest

from graphopt.errors import ConfigError
from graphopt.graph.io import load_graph
from graphopt.lm import LM, LMConfig
from graphopt.lm.config import LevelConfig
from graphopt.loop import LoopSizes, optimize
from graphopt.operators.base import StepContext
from graphopt.operators.retrieve import Retrieve
from graphopt.program import Demo, Program, Retrieval, evaluate, read_program
from graphopt.program.export import export_program
from graphopt.program.retrieval import nearest_by_vector
from graphopt.tasks.base import Task
from graphopt.testing import FakeModel
from graphopt.types import Example

# Each question shares its words with the demo of the other topic: retrieval by words shows the
# wrong demo, by meaning the right one.
TOPIC = {"cat": (1.0, 0.0), "kitten": (1.0, 0.0), "truck": (0.0, 1.0), "lorry": (0.0, 1.0)}
POOL = (
    Demo(input="a big truck", output="VEHICLE"),
    Demo(input="a small cat", output="ANIMAL"),
)


def meaning(text: str) -> list[float]:
    vector = [0.0, 0.0, 0.01]
    for word in text.lower().replace("?", " ").split():
        a, b = TOPIC.get(word, (0.0, 0.0))
        vector[0] += a
        vector[1] += b
    return vector


def program_model(messages, request) -> str:
    """Answers with the output of the last demo shown: right exactly when that demo is of the input's topic."""
    assistant = [m["content"] for m in messages if m["role"] == "assistant"]
    return assistant[-1] if assistant else "?"


def lm_for(fake: FakeModel, embedding_model: str | None = "fake/embedder") -> LM:
    config = LMConfig().with_models(program="fake/program", optimizer="fake/optimizer")
    config = config.model_copy(update={"program": config.program.model_copy(update={"embedding_model": embedding_model})})
    return LM(config, transport=fake, cache_dir=None)


def task() -> Task:
    examples = [Example(id=f"v{i}", input=q, target=t) for i, (q, t) in enumerate(
        [("a big kitten", "ANIMAL"), ("a small lorry", "VEHICLE"), ("one big kitten", "ANIMAL")])]
    train = [Example(id=f"t{i}", input=d.input, target=d.output) for i, d in enumerate(POOL)]
    return Task(name="topics", train=train, val=examples, test=examples, seed_program=Program(instruction="Say the kind."),
                extract=str.strip)


def test_nearest_by_vector_ranks_by_cosine_nearest_last_skipping_the_query_itself():
    pool = (Demo(input="a", output="1"), Demo(input="b", output="2"), Demo(input="c", output="3"), Demo(input="q", output="4"))
    vectors = [[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [1.0, 1.0]]
    assert [d.output for d in nearest_by_vector(pool, vectors, "q", [0.0, 2.0], 2)] == ["2", "3"]  # nearest last
    assert [d.output for d in nearest_by_vector(pool, vectors, "q", [1.0, 1.0], 3)] == ["3", "1", "2"]  # "q" itself skipped
    tied = [[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]]
    assert [d.output for d in nearest_by_vector(pool, tied, "x", [3.0, 0.0], 2)] == ["2", "1"]  # ties: pool order


def test_a_program_retrieving_by_meaning_shows_each_input_the_demos_of_its_topic():
    fake = FakeModel(fn=program_model, embed=meaning)
    lm = lm_for(fake)
    by_meaning = Program(instruction="Say the kind.").with_step(None, retrieve=Retrieval(pool=POOL, k=1, by="embedding"))
    by_words = Program(instruction="Say the kind.").with_step(None, retrieve=Retrieval(pool=POOL, k=1))
    assert asyncio.run(evaluate(by_meaning, task().val, task(), lm)).accuracy == 1.0
    assert asyncio.run(evaluate(by_words, task().val, task(), lm)).accuracy == 0.0  # the shared words mislead
    embedded = [r.messages[-1]["content"] for r in fake.requests if r.embed]
    assert sorted(embedded) == sorted([d.input for d in POOL] + [ex.input for ex in task().val])  # the pool once
    program_level = lm.ledger.level("program")
    assert program_level.calls == len(embedded) + 2 * len(task().val)  # each input's vector is part of its cost


def test_the_pool_is_embedded_once_per_process_while_each_input_is_accounted_again():
    fake = FakeModel(fn=program_model, embed=meaning)
    lm = lm_for(fake)
    program = Program(instruction="Say the kind.").with_step(None, retrieve=Retrieval(pool=POOL, k=1, by="embedding"))
    asyncio.run(evaluate(program, task().val, task(), lm))
    first = sum(r.embed for r in fake.requests)
    assert first == len(POOL) + len(task().val)
    calls = lm.ledger.level("program").calls
    asyncio.run(evaluate(program, task().val, task(), lm))  # no response cache here: the inputs are embedded again
    assert sum(r.embed for r in fake.requests) == first + len(task().val)  # the pool is not
    assert lm.ledger.level("program").calls == calls + 2 * len(task().val)


def test_without_an_embedding_model_the_run_says_how_to_set_one_and_the_operator_drops_its_proposal():
    fake = FakeModel(fn=program_model)  # a chat model that cannot embed, and no embedding_model
    program = Program(instruction="Say the kind.").with_step(None, retrieve=Retrieval(pool=POOL, k=1, by="embedding"))
    with pytest.raises(ConfigError, match=r"--set program\.embedding_model=MODEL"):
        asyncio.run(lm_for(fake, None).embed("program", ["x"]))
    with pytest.raises(ConfigError, match="embedding model"):  # loud, never a silent fallback to words
        asyncio.run(evaluate(program, task().val, task(), lm_for(fake, None)))
    ctx = StepContext(lm=lm_for(fake, None), task=task(), minibatch=task().train[:1])
    out = asyncio.run(Retrieve("retrieve", {"by": "embedding", "source": "train"}).run(ctx, {"candidates": [program]}))
    assert out == {"candidates": []}
    assert "embedding_model" in ctx.dropped[0].reason


def test_the_retrieve_operator_builds_programs_that_retrieve_by_meaning_through_the_inner_loop():
    fake = FakeModel(fn=program_model, embed=meaning)
    spec = load_graph("knn").model_copy(deep=True)
    spec.nodes[0].params["by"] = "embedding"
    spec.nodes[0].params["k"] = 1
    data = Task(name="topics", train=task().train + [Example(id="t8", input="a big cat", target="ANIMAL"),
                                                     Example(id="t9", input="a small truck", target="VEHICLE")],
                val=task().val, test=task().val, seed_program=Program(instruction="Say the kind."), extract=str.strip)
    result = asyncio.run(optimize(data.seed_program, spec, data, lm_for(fake), LoopSizes(steps=1, minibatch=2)))
    retrieval = result.best_program.answer_step.retrieve
    assert retrieval is not None and retrieval.by == "embedding" and result.best_val == 1.0


def test_a_program_retrieving_by_meaning_is_saved_loaded_and_exported_with_its_rule(tmp_path):
    program = Program(instruction="Say the kind.").with_step(None, retrieve=Retrieval(pool=POOL, k=2, by="embedding"))
    (tmp_path / "p.json").write_text(program.model_dump_json(indent=2))  # as a search writes best.program.json
    assert read_program(tmp_path / "p.json") == program
    assert "embedding vectors" in export_program(program, "text") and "embedding vectors" in export_program(program, "messages")
    by_words = Retrieval(pool=POOL, k=2)
    assert "by" not in by_words.model_dump()  # at its default it is left out: ids of older programs stay


def test_embeddings_through_an_openai_compatible_server():
    from graphopt.testing.stub_server import StubServer

    with StubServer(reply="x") as server:
        level = LevelConfig(model="openai/stub-model", api_base=server.base_url, embedding_model="openai/stub-embedder")
        lm = LM(LMConfig().model_copy(update={"program": level}), cache_dir=None)
        os.environ.setdefault("OPENAI_API_KEY", "sk-test-not-a-key")
        a, b, c = asyncio.run(lm.embed("program", ["red apple pie", "apple pie red", "blue truck"]))
        lm.close()
        assert a == b and a != c and len(a) == 32
        assert server.requests[-1]["model"] == "stub-embedder" and "input" in server.requests[-1]
        assert lm.ledger.level("program").prompt_tokens == 3 + 3 + 2  # the words of each text


@pytest.mark.integration
def test_the_embedded_model_embeds_texts_by_meaning():
    pytest.importorskip("llama_cpp")
    lm = LM(LMConfig().model_copy(update={"program": LevelConfig(embedding_model="local/smollm2")}), cache_dir=None)
    try:
        sort_a, sort_b, close = asyncio.run(lm.embed("program", [
            "Sort the following words alphabetically: List: pear apple fig",
            "Sort the following words alphabetically: List: kiwi banana",
            "Complete the rest of the sequence, making sure that the parentheses are closed properly: ( [ {",
        ]))
    finally:
        lm.close()

    def cosine(u, v):
        return sum(x * y for x, y in zip(u, v)) / (sum(x * x for x in u) ** 0.5 * sum(y * y for y in v) ** 0.5)

    assert len(sort_a) == len(close) > 100
    assert cosine(sort_a, sort_b) > cosine(sort_a, close)
    assert lm.ledger.level("program").prompt_tokens > 20


def test_kept_pools_are_bounded_per_client_the_least_recently_used_embedded_again(monkeypatch):
    import graphopt.program.retrieval as retrieval

    monkeypatch.setattr(retrieval, "_CACHE_SIZE", 2)
    fake = FakeModel(fn=program_model, embed=meaning)
    lm = lm_for(fake)
    pools = [(Demo(input=f"a cat {i}", output="ANIMAL"), Demo(input=f"a truck {i}", output="VEHICLE")) for i in range(3)]
    programs = [Program(instruction="Say.").with_step(None, retrieve=Retrieval(pool=p, k=1, by="embedding")) for p in pools]
    pool_texts = lambda: sum(r.embed and r.messages[-1]["content"][-1].isdigit() for r in fake.requests)  # noqa: E731
    for program in programs:
        asyncio.run(evaluate(program, task().val[:1], task(), lm))
    assert pool_texts() == 6
    asyncio.run(evaluate(programs[2], task().val[:1], task(), lm))
    assert pool_texts() == 6  # kept
    asyncio.run(evaluate(programs[0], task().val[:1], task(), lm))
    assert pool_texts() == 8  # it had gone: embedded again
    other = lm_for(FakeModel(fn=program_model, embed=meaning))  # another client keeps its own
    asyncio.run(evaluate(programs[0], task().val[:1], task(), other))
    assert sum(r.embed for r in other.transport.requests) == 3


def test_auto_retrieves_by_meaning_where_the_program_level_can_embed_and_by_words_elsewhere():
    program = Program(instruction="Say the kind.")
    fake = FakeModel(fn=program_model, embed=meaning)

    def made(lm: LM) -> Retrieval:
        ctx = StepContext(lm=lm, task=task(), minibatch=task().train[:1])
        out = asyncio.run(Retrieve("retrieve", {"by": "auto", "source": "train"}).run(ctx, {"candidates": [program]}))
        return out["candidates"][0].answer_step.retrieve

    assert made(lm_for(fake)).by == "embedding"  # an embedding model is set
    assert made(lm_for(FakeModel(fn=program_model), None)).by == "bm25"  # none, and a program model that cannot embed
    own = lm_for(fake, None)  # none set, but the level's own model embeds (as the embedded model does)
    assert own.embedding_model("program") == "fake/program" and made(own).by == "embedding"
    local = LM(LMConfig(cache_dir=None))  # the real transport: the embedded model embeds, an API chat model does not
    assert local.embedding_model("program") == "local/smollm2"
    assert LM(LMConfig(cache_dir=None).with_models(program="gpt-4o-mini")).embedding_model("program") is None
