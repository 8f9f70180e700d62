"""The inner loop: accepting improvements on validation, dropped replies, budgets, records."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from graphopt.errors import ConfigError, TaskError
from graphopt.graph.io import load_graph
from graphopt.lm import LM, Budget, Caps, LMConfig
from graphopt.testing import FakeModel
from graphopt.loop import AcceptStrategy, LoopSizes, OptimizeResult, optimize
from graphopt.tasks.base import Task
from graphopt.types import Example
from graphopt.program import Program

SEED = Program(instruction="Answer the question.")
MAGIC = "Use MAGIC to answer the question."


def toy_task(n_train: int = 10, n_val: int = 6) -> Task:
    def ex(split: str, i: int) -> Example:
        return Example(id=f"{split}{i}", input=f"{split} q{i}", target=f"a{i}")

    return Task(
        name="toy", train=[ex("tr", i) for i in range(n_train)], val=[ex("va", i) for i in range(n_val)],
        test=[ex("TEST", i) for i in range(3)], seed_program=SEED, extract=str.strip,
    )


def program_model(messages: list[dict[str, str]]) -> str:
    """Right exactly when the instruction mentions MAGIC."""
    return "a" + messages[-1]["content"].split("q")[-1] if "MAGIC" in messages[0]["content"] else "nope"


def fake(rewrite_reply: str = json.dumps({"instruction": MAGIC})) -> FakeModel:
    def reply(messages: list[dict[str, str]], request: Any) -> str:
        if request.model == "fake/program":
            return program_model(messages)
        if "Do not write the new instruction" in messages[-1]["content"]:
            return "Mention the magic word."
        return rewrite_reply

    return FakeModel(fn=reply)


def make_lm(transport: FakeModel, budget: Budget | None = None) -> LM:
    config = LMConfig().with_models(program="fake/program", optimizer="fake/optimizer")
    return LM(config, transport=transport, budget=budget, cache_dir=None)


def run(graph: str = "tgd", transport: FakeModel | None = None, **kwargs: Any) -> OptimizeResult:
    sizes = LoopSizes(steps=kwargs.pop("steps", 3), minibatch=4, val_limit=kwargs.pop("val_limit", None))
    lm = make_lm(transport or fake(), kwargs.pop("budget", None))
    task = kwargs.pop("task", None) or toy_task()
    return asyncio.run(optimize(SEED, load_graph(graph), task, lm, sizes, **kwargs))


@pytest.mark.parametrize("graph", ["tgd", "tgd_select", "ensemble", "opro"])
def test_a_rewrite_with_the_right_instruction_raises_validation_accuracy(graph: str) -> None:
    result = run(graph, steps=2)
    assert result.initial_val == 0.0 and result.best_val == 1.0
    assert result.best_program.instruction == MAGIC
    first = result.history[0]
    assert first.accepted == result.best_program.id and first.best_val == 1.0
    assert [c.val_score for c in first.candidates if c.program.instruction == MAGIC] == [1.0]
    assert result.stopped is None


def test_a_garbage_rewrite_is_dropped_with_a_reason_and_the_loop_goes_on() -> None:
    result = run("tgd", fake(rewrite_reply='```json\n{"instruction": "Use MAGIC, but unterminated\n```'), steps=3)
    assert len(result.history) == 3 and result.best_program == SEED and result.best_val == 0.0
    for record in result.history:
        assert record.accepted is None and record.candidates == []
        assert [d["node"] for d in record.dropped] == ["rewrite"]
        assert record.dropped[0]["reason"] == "unparseable reply (no 'instruction' field)"


def test_a_budget_cap_stops_the_loop_and_keeps_the_best_so_far() -> None:
    # program calls: 3 (seed on dev) + 4 (minibatch) + 3 (candidate on dev) = 10 in step 1,
    # then 4 per step (minibatches; the same MAGIC candidate is not scored again)
    result = run("tgd", steps=5, budget=Budget(levels={"program": Caps(calls=16)}))
    assert result.stopped == "budget" and "program cap" in result.stop_reason
    assert result.best_program.instruction == MAGIC and result.best_dev == 1.0
    assert result.best_val is None  # validation is read only when the loop ends on its own
    assert result.history[-1].error and result.history[0].error == ""


def test_acceptance_runs_on_a_dev_split_and_validation_is_read_once_at_the_end() -> None:
    seen: list[str] = []
    base = fake()

    def spy(messages, request):
        if request.model == "fake/program":
            seen.append(messages[-1]["content"])
        return base.fn(messages, request)

    result = run("tgd", steps=2, transport=FakeModel(fn=spy))
    assert result.accept_on == "dev" and result.best_dev == 1.0 and result.best_val == 1.0
    assert result.initial_val == 0.0
    assert set(result.val_scores) == {f"va{i}" for i in range(6)}
    assert sum("va q" in p for p in seen) == 12  # the seed and the winner, 6 examples each, nothing else
    dev = {f"tr q{i}" for i in range(7, 10)}  # the last third of train
    minibatch_inputs = {ex for record in result.history for ex in record.minibatch}
    assert not minibatch_inputs & {f"tr{i}" for i in range(7, 10)}
    assert any(any(d in p for d in dev) for p in seen)


def test_operators_never_draw_demos_from_the_dev_split_acceptance_is_scored_on() -> None:
    """A model that copies a demo's answer when asked a demo's input: a dev example shown as a demo
    would score on dev by the copy, and acceptance would favour the programs showing the most."""
    shown: list[str] = []

    def copying(messages, request):
        demos = {messages[i]["content"]: messages[i + 1]["content"] for i in range(1, len(messages) - 1, 2)}
        shown.extend(demos)
        return demos.get(messages[-1]["content"], "nope")

    result = run("fewshot", FakeModel(fn=copying), steps=2, task=toy_task(n_train=12))
    dev = {f"tr q{i}" for i in range(8, 12)}  # the last third of train
    assert shown and not dev & set(shown)
    assert result.accept_on == "dev" and result.best_dev == 0.0 and result.best_program == SEED


def test_bootstrap_shows_eight_demos_and_is_kept_where_only_many_demos_help() -> None:
    def many_demos(messages, request):  # right only with at least 6 demos in the prompt
        return "a" + messages[-1]["content"].split("q")[-1] if len(messages) >= 2 + 2 * 6 else "nope"

    task = toy_task(n_train=30)
    kept = run("bootstrap", FakeModel(fn=many_demos), steps=1, task=task)
    assert len(kept.best_program.demos) == 8 and kept.best_dev == 1.0 and kept.best_val == 1.0
    assert run("fewshot", FakeModel(fn=many_demos), steps=1, task=task).best_program == SEED  # 3 demos


@pytest.mark.parametrize("graph", ["fewshot", "fewshot_rs", "fewshot_format", "knn", "vote"])
def test_demo_sets_tied_with_the_current_program_on_the_minibatch_still_reach_acceptance(graph: str) -> None:
    """Every minibatch example is out of reach, so all programs tie at 0 there: the current program
    must not win that tie inside the graph, the loop decides on the acceptance examples."""
    def demos_help_off_the_minibatch(messages, request):
        asked = messages[-1]["content"]
        pool = asked.startswith("tr q") and int(asked.split("q")[-1]) < 8
        return "nope" if pool or len(messages) < 4 else "a" + asked.split("q")[-1]

    result = run(graph, FakeModel(fn=demos_help_off_the_minibatch), steps=1, task=toy_task(n_train=12))
    assert result.history[0].current_minibatch_score == 0.0
    assert result.best_program.demos or result.best_program.answer_step.retrieve, "a tie at 0 on the minibatch kept the seed"
    assert result.best_dev == 1.0 and result.best_val == 1.0


@pytest.mark.parametrize("minibatch_answer", ["nope", "right"])
@pytest.mark.parametrize("graph", ["tgd_select", "opro", "ensemble"])
def test_rewrites_tied_with_the_current_program_on_the_minibatch_still_reach_acceptance(graph: str, minibatch_answer: str) -> None:
    """Every program scores the same on the minibatch (all wrong, as a weak model; or all right, as
    a capable one on easy examples): the current program must not win that tie inside the graph,
    the loop decides on the acceptance examples, where only the rewrite is right."""
    def tie_on_the_minibatch(messages: list[dict[str, str]], request: Any) -> str:
        if request.model != "fake/program":
            return "Mention the magic word." if "Do not write the new instruction" in messages[-1]["content"] else json.dumps({"instruction": MAGIC})
        asked = messages[-1]["content"]
        if asked.startswith("tr q") and int(asked.split("q")[-1]) < 8:  # the examples a minibatch is drawn from
            return "nope" if minibatch_answer == "nope" else "a" + asked.split("q")[-1]
        return program_model(messages)

    result = run(graph, FakeModel(fn=tie_on_the_minibatch), steps=1, task=toy_task(n_train=12))
    assert result.history[0].current_minibatch_score == (0.0 if minibatch_answer == "nope" else 1.0)
    assert result.best_program.instruction == MAGIC, "a tie on the minibatch kept the current program"
    assert result.best_dev == 1.0 and result.best_val == 1.0


def test_a_tie_keeps_the_incumbent_by_default() -> None:
    result = run("tgd", steps=2, transport=fake(rewrite_reply=json.dumps({"instruction": "Still wrong."})))
    assert result.best_program == SEED
    assert all(r.accepted is None for r in result.history)


def test_a_budget_cap_before_the_first_validation_returns_the_seed_unmeasured() -> None:
    result = run("tgd", steps=2, budget=Budget(total=Caps(calls=0)))
    assert result.stopped == "budget" and result.best_program == SEED and result.best_val is None


def test_no_worse_accepts_a_tie_and_better_does_not() -> None:
    never_right = json.dumps({"instruction": "Answer the question with care."})
    assert run("tgd", fake(never_right), steps=1, accept="no_worse").best_program.instruction == (
        "Answer the question with care."
    )
    assert run("tgd", fake(never_right), steps=1, accept="better").best_program == SEED


def test_an_accept_strategy_object_can_be_passed() -> None:
    class Never(AcceptStrategy):
        def accepts(self, candidate: float, best: float) -> bool:
            return False

    result = run("tgd", steps=1, accept=Never())
    assert result.best_program == SEED and result.history[0].candidates[0].val_score == 1.0


def test_an_unknown_accept_strategy_is_a_config_error_with_a_suggestion() -> None:
    with pytest.raises(ConfigError, match="did you mean 'no_worse'"):
        run("tgd", accept="no_wrse")


def test_minibatches_are_seeded() -> None:
    first = [r.minibatch for r in run("tgd", fake("{}"), steps=3, seed=1).history]
    again = [r.minibatch for r in run("tgd", fake("{}"), steps=3, seed=1).history]
    other = [r.minibatch for r in run("tgd", fake("{}"), steps=3, seed=2).history]
    assert first == again and first != other
    assert all(len(ids) == 4 for ids in first)


def test_each_step_records_usage_per_level_and_node_outputs() -> None:
    record = run("tgd_select", steps=1).history[0]
    assert record.usage["program"]["calls"] > 0 and record.usage["optimizer"]["calls"] == 4
    assert set(record.node_outputs) == {"critique", "rewrite", "select"}
    assert record.node_outputs["critique"]["feedback"][0]["text"] == "Mention the magic word."
    assert record.current_minibatch_score == 0.0
    assert record.candidates[0].minibatch_score == 1.0


def test_val_limit_and_test_split_are_respected() -> None:
    transport = fake()
    result = run("tgd", transport, steps=1, val_limit=2)
    inputs = [r.messages[-1]["content"] for r in transport.requests if r.model == "fake/program"]
    assert not any(text.startswith("TEST") for text in inputs)
    assert sum(text.startswith("va") for text in inputs) == 2 * 2  # seed and one candidate, 2 examples each
    assert result.best_val == 1.0


def test_no_program_is_run_twice_on_the_same_example() -> None:
    transport = fake()
    run("tgd", transport, steps=4, task=toy_task(n_train=4))
    seen = [(r.messages[0]["content"], r.messages[-1]["content"]) for r in transport.requests if r.model == "fake/program"]
    assert len(seen) == len(set(seen))


def test_the_history_reaches_an_opro_rewrite() -> None:
    transport = fake()
    run("opro", transport, steps=1)
    rewrite_prompts = [r.messages[-1]["content"] for r in transport.requests if r.model == "fake/optimizer"]
    assert "Instruction: Answer the question.\nScore: 0.000" in rewrite_prompts[0]


def test_the_result_round_trips_through_json() -> None:
    result = run("tgd_select", steps=2)
    data = json.loads(json.dumps(result.to_dict()))
    assert OptimizeResult.from_dict(data) == result
    assert data["graph"] == "tgd_select" and data["usage"]["optimizer"]["calls"] > 0


def test_on_step_sees_each_record_as_it_ends() -> None:
    seen = []
    run("tgd", steps=2, on_step=seen.append)
    assert [r.step for r in seen] == [1, 2]


def test_a_task_without_validation_examples_is_a_task_error() -> None:
    with pytest.raises(TaskError, match="validation"):
        run("tgd", task=toy_task(n_val=0))
