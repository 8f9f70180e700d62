"""benchmarks/call_graph.py: the critical path counts only what each call reads (search_latency's lower bound)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

from call_graph import Call, critical_path, record_calls  # noqa: E402

from graphopt.lm import LM, LevelConfig, LMConfig, sample_place  # noqa: E402
from graphopt.testing import FakeModel  # noqa: E402


def call(asked, answered, place, prompt="p", reply="r", cached=False) -> Call:
    return Call(asked, answered, place, prompt, reply, cached)


def test_calls_of_one_evaluation_chain_in_the_order_they_waited_for_each_other():
    calls = [call(0, 1, "c1/step1"), call(0, 1, "c1/step1"), call(1, 2, "c1/step1/critique"), call(2, 3, "c1")]
    assert critical_path(calls, {})[0] == 3  # the two minibatch calls ran side by side


def test_evaluations_read_only_their_parents_not_whatever_ran_before():
    calls = [call(0, 1, "c1"), call(1, 2, "c1"), call(2, 3, "c2"), call(3, 4, "c3")]
    assert critical_path(calls, {"c3": ("c1",)})[0] == 3  # c3 after c1's two; c2 is not read
    assert critical_path(calls, {"c3": ("c2",)})[0] == 2
    assert critical_path(calls, {"c2": ("c1",), "c3": ("c2",)})[0] == 4


def test_a_prompt_holding_text_an_earlier_call_wrote_reads_that_call():
    new = "Sort the words carefully in alphabetical order."
    calls = [call(0, 1, "c1", reply=new), call(1, 2, "c2", prompt=f"system: {new}\nList: b a")]
    assert critical_path(calls, {})[0] == 2
    # Text the writer had in its own prompt was not written by it.
    copied = [call(0, 1, "c1", prompt=new, reply=new), call(1, 2, "c2", prompt=new)]
    assert critical_path(copied, {})[0] == 1


def test_a_joined_call_ends_with_the_call_it_joined_and_the_final_runs_read_every_evaluation():
    calls = [call(0, 1, "c1", prompt="same"), call(0.5, 1, "c2", prompt="same", cached=True), call(1, 2, "c1")]
    assert critical_path(calls, {})[0] == 2
    final = [call(0, 1, "c1"), call(1, 2, "c1"), call(0, 1, "c2"), call(2, 3, "")]
    length, chain = critical_path(final, {})
    assert (length, chain) == (3, ["c1", "c1", "(final)"])


def test_record_calls_notes_place_prompt_reply_and_times_of_every_call():
    lm = LM(LMConfig(program=LevelConfig(model="fake/m")), transport=FakeModel(default="an answer", latency=0.01), cache_dir=None)
    calls = record_calls(lm)

    async def main():
        with sample_place("c7", "step1"):
            await lm.complete("program", [{"role": "user", "content": "hello"}])

    asyncio.run(main())
    assert [(c.place, c.prompt, c.reply, c.cached) for c in calls] == [("c7/step1", "hello", "an answer", False)]
    assert calls[0].answered - calls[0].asked >= 0.01
