"""The contract every operator keeps, checked over every registered operator.

Reuse it for your own operator: register it with `@register_operator` before the tests are
collected (e.g. import its module in your conftest.py) and every test here runs on it too; or
call the `check_*` functions on its class directly, as `test_contract_holds_for_a_user_operator`
does. If some prompt is only used under particular params, add them to EXERCISE_PARAMS.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from graphopt.graph.state import is_port_value
from graphopt.lm import LM, LMConfig
from graphopt.testing import FakeModel
from graphopt.operators import Operator, Port, Prompt, StepContext, operator_names, register_operator
from graphopt.operators.base import PORT_TYPES
from graphopt.operators.registry import OPERATORS, get_operator
from graphopt.tasks.base import Task
from graphopt.program import make_shape
from graphopt.types import Attempt, Example, Feedback, StepTrace, Trace
from graphopt.program import Program

# Params that make an operator use every one of its prompts (defaults otherwise).
EXERCISE_PARAMS: dict[str, dict[str, Any]] = {"ensemble": {"mode": "combine"}}


def toy_task() -> Task:
    def ex(split: str, i: int) -> Example:
        return Example(id=f"{split}{i}", input=f"question {i}", target=f"answer {i}")

    return Task(
        name="toy", train=[ex("tr", i) for i in range(6)], val=[ex("va", i) for i in range(3)],
        test=[ex("te", i) for i in range(3)], seed_program=Program(instruction="Answer the question."),
        extract=str.strip,
    )


def fake_lm() -> tuple[LM, FakeModel]:
    """Program level echoes a right answer for even questions; optimizer level proposes new instructions."""
    counter = itertools.count()

    def reply(messages: list[dict[str, str]], request: Any) -> str:
        if request.model == "fake/program":
            if "do not write the final answer" in messages[0]["content"]:
                return "Some reasoning."
            number = re.findall(r"question (\d+)", messages[-1]["content"])[-1]
            return f"answer {number}" if int(number) % 2 == 0 else "no idea"
        return json.dumps({"instruction": f"Improved instruction number {next(counter)}: answer exactly."})

    fake = FakeModel(fn=reply)
    config = LMConfig().with_models(program="fake/program", optimizer="fake/optimizer")
    return LM(config, transport=fake, cache_dir=None), fake


def sample_inputs(
    op: type[Operator], task: Task, *, required_only: bool = False, multi_step: bool = False
) -> dict[str, Any]:
    """A value of the declared type for each input port (programs of two steps with `multi_step`)."""
    first = Program(instruction="Answer the question carefully.")
    second = Program(instruction="Answer briefly and exactly.")
    if multi_step:
        first, second = make_shape("reason_then_answer", first), make_shape("reason_then_answer", second)

    def steps(ex: Example, output: str) -> tuple[StepTrace, ...]:
        if not multi_step:
            return ()
        return (StepTrace(name="reason", input=ex.input, output="Some reasoning."),
                StepTrace(name="answer", input=f"{ex.input}\n\nReasoning:\nSome reasoning.", output=output))

    traces = [
        Trace(example=ex, output=ex.target if i % 2 == 0 else "no idea", answer=ex.target if i % 2 == 0 else "no idea",
              score=1.0 if i % 2 == 0 else 0.0, steps=steps(ex, ex.target if i % 2 == 0 else "no idea"))
        for i, ex in enumerate(task.train[:4])
    ]
    values = {
        "Program": first,
        "Candidates": [first, second],
        "Traces": traces,
        "Feedback": [Feedback(program_id=first.id, text="State the answer format.", step="reason" if multi_step else "")],
        "History": [Attempt(program=second, score=0.2, step=1), Attempt(program=first, score=0.5, step=2)],
    }
    return {name: values[port.type] for name, port in op.inputs.items() if port.required or not required_only}


def run(op: Operator, inputs: dict[str, Any]) -> tuple[dict[str, Any], FakeModel, StepContext]:
    task = toy_task()
    lm, fake = fake_lm()
    ctx = StepContext(lm=lm, task=task, minibatch=task.train[:4])
    return asyncio.run(op.run(ctx, inputs)), fake, ctx


def prompts_seen(fake: FakeModel) -> str:
    return "\n".join(m["content"] for r in fake.requests for m in r.messages)


# --- the checks ------------------------------------------------------------------------------


def check_ports(cls: type[Operator]) -> None:
    assert cls.outputs, f"{cls.name} declares no output port"
    for port in [*cls.inputs.values(), *cls.outputs.values()]:
        assert isinstance(port, Port) and port.type in PORT_TYPES


def check_params(cls: type[Operator], params: dict[str, Any]) -> None:
    cls("node", params)  # defaults (plus exercise params) are valid
    with pytest.raises(ValidationError):
        cls.Params.model_validate({"no_such_param_xyz": 1})


def check_outputs(cls: type[Operator], params: dict[str, Any]) -> None:
    for required_only in (False, True):
        outputs, _, _ = run(cls("node", params), sample_inputs(cls, toy_task(), required_only=required_only))
        assert set(outputs) == set(cls.outputs)
        for name, value in outputs.items():
            assert is_port_value(cls.outputs[name].type, value), f"{cls.name}.{name}: {value!r}"


def check_prompts_filled_exactly(cls: type[Operator], params: dict[str, Any]) -> None:
    op = cls("node", params)
    filled: dict[str, set[str]] = {}
    original = op.prompt

    def spy(name: str, **values: Any) -> str:
        filled[name] = set(values)
        return original(name, **values)

    op.prompt = spy  # type: ignore[method-assign]
    # Some prompts show only for programs of several steps: the union over both kinds counts.
    for multi_step in (False, True):
        _, fake, _ = run(op, sample_inputs(cls, toy_task(), multi_step=multi_step))
        if cls.prompts:
            # A step's input template ({input}, {steps.reason}) is program text, not a placeholder.
            seen = prompts_seen(fake).replace('{"instruction"', "").replace("{input}", "").replace("{steps.reason}", "")
            assert fake.requests and "{" not in seen
    assert set(filled) == set(cls.prompts), f"{cls.name} used {sorted(filled)} of {sorted(cls.prompts)}"
    for name, values in filled.items():
        assert values == cls.prompts[name].placeholders(), f"{cls.name} prompt {name!r}"


def check_prompt_override_used(cls: type[Operator], params: dict[str, Any]) -> None:
    for name, prompt in cls.prompts.items():
        marker = f"OVERRIDDEN-{name.upper()}"
        text = marker + " " + " ".join("{" + p + "}" for p in sorted(prompt.placeholders()))
        seen = ""
        for multi_step in (False, True):
            _, fake, _ = run(cls("node", params, {name: text}), sample_inputs(cls, toy_task(), multi_step=multi_step))
            seen += prompts_seen(fake)
        assert marker in seen, f"{cls.name}: override of {name!r} did not reach the model"


def check_multi_step_programs(cls: type[Operator], params: dict[str, Any]) -> None:
    """On programs of two steps: outputs of the declared types, programs keep their step names,
    and a program derived from an input one differs from it in one step at most."""
    inputs = sample_inputs(cls, toy_task(), multi_step=True)
    outputs, _, _ = run(cls("node", params), inputs)
    parents = [p for name, port in cls.inputs.items() if port.type == "Candidates" for p in inputs.get(name, [])]
    for name, value in outputs.items():
        assert is_port_value(cls.outputs[name].type, value), f"{cls.name}.{name}: {value!r}"
        if cls.outputs[name].type != "Candidates":
            continue
        for program in value:
            assert [s.name for s in program.steps] == ["reason", "answer"], f"{cls.name} changed the steps"
            changed = min(sum(a != b for a, b in zip(program.steps, parent.steps)) for parent in parents)
            assert changed <= 1, f"{cls.name} edited {changed} steps of one program"


CHECKS = [check_params, check_outputs, check_prompts_filled_exactly, check_prompt_override_used, check_multi_step_programs]


# --- over every registered operator -------------------------------------------------------------


def _is_test_double(cls: type[Operator]) -> bool:
    """Stub operators defined inside this test suite (graph fixtures) are not real operators."""
    return Path(__file__).resolve().parent in Path(inspect.getfile(cls)).resolve().parents


# Built-ins, and any operator registered (e.g. from your conftest.py) before collection.
NAMES = [name for name in operator_names() if not _is_test_double(get_operator(name))]


def test_builtin_operators_are_registered() -> None:
    assert {"critique", "rewrite", "ensemble", "select", "paraphrase", "fewshot", "history"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_ports_use_known_types(name: str) -> None:
    check_ports(get_operator(name))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_operator_contract(name: str, check: Any) -> None:
    check(get_operator(name), EXERCISE_PARAMS.get(name, {}))


@pytest.mark.parametrize("name", NAMES)
def test_llm_operators_call_only_the_optimizer_level(name: str) -> None:
    cls = get_operator(name)
    _, fake, _ = run(cls("node", EXERCISE_PARAMS.get(name, {})), sample_inputs(cls, toy_task()))
    models = {r.model for r in fake.requests}
    if cls.kind == "score":
        assert models == {"fake/program"}
    elif cls.kind in ("data",):
        assert models == set()
    elif cls.prompts:
        assert "fake/optimizer" in models


# --- reuse by a user operator -------------------------------------------------------------------


class Shout(Operator):
    """A user operator: upper-cases instructions with the help of the optimizer model."""

    name = "shout_test_op"
    kind = "llm"
    inputs = {"candidates": Port("Candidates")}
    outputs = {"candidates": Port("Candidates")}
    prompts = {"shout": Prompt("Make this louder: {instruction}")}

    async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
        out = []
        for program in inputs["candidates"]:
            await ctx.lm.complete("optimizer", [{"role": "user", "content": self.prompt("shout", instruction=program.instruction)}])
            out.append(program.with_instruction(program.instruction.upper()))
        return {"candidates": out}


@pytest.fixture
def registered_shout():
    register_operator(Shout)
    yield Shout
    OPERATORS.pop(Shout.name, None)


def test_contract_holds_for_a_user_operator(registered_shout: type[Operator]) -> None:
    cls = get_operator("shout_test_op")
    check_ports(cls)
    for check in CHECKS:
        check(cls, {})


def test_contract_catches_an_operator_returning_an_undeclared_port() -> None:
    class Leaky(Shout):
        name = "leaky_test_op"

        async def run(self, ctx: StepContext, inputs: dict[str, Any]) -> dict[str, Any]:
            return {"candidates": [], "extra": []}

    with pytest.raises(AssertionError):
        check_outputs(Leaky, {})
