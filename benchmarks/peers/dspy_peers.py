"""The DSPy optimizers a user would try instead of graphopt, run on the benchmark's task and cap.

Each peer gets the task's train split and the first `val_limit` validation examples (the splits
graphopt's methods get), the task's own metric (graphopt's extraction and exact match), the
program model on llama_cpp.server, and a `Meter` enforcing the method's cap. Settings are DSPy's
defaults unless the benchmark states otherwise:

- BootstrapFewShot: 4 bootstrapped, 16 labeled demos at most (DSPy's defaults);
- BootstrapFewShotWithRandomSearch: the same, 16 candidate programs (plus DSPy's 3 fixed ones);
- MIPROv2 auto="light": proposer on the optimizer level, 4 + 4 demos (its defaults), the seed;
- GEPA: reflection on the optimizer level, at most `tokens // 50` metric calls (the token cap
  binds first), the seed, textual feedback naming the expected answer.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dspy
from dspy.utils.exceptions import AdapterParseError, ContextWindowExceededError

from graphopt.tasks import Task
from graphopt.types import Example
from graphopt.program import Program

from .dspy_lm import INPUT, OUTPUT, CapReached, Meter, ProgramAdapter, optimizer_lm, program_lm, task_module, to_program
from .report import ZERO_SHOT_KEPT

PEERS = ("dspy BootstrapFewShot", "dspy BootstrapFewShotWithRandomSearch", "dspy MIPROv2 light", "dspy GEPA")
THREADS = 2


@dataclass
class PeerRun:
    """What one peer returned and spent."""

    program: Program
    tokens: dict[str, int] = field(default_factory=dict)
    note: str = ""


def _examples(examples: list[Example]) -> list[dspy.Example]:
    return [dspy.Example({INPUT: ex.input, OUTPUT: ex.target}).with_inputs(INPUT) for ex in examples]


def task_metric(task: Task, feedback: bool = False):  # noqa: ANN201
    """The task's metric on a DSPy prediction: graphopt's extraction and scoring of the answer text."""

    def metric(gold, pred, trace=None, pred_name=None, pred_trace=None):  # noqa: ANN001, ANN202
        example = Example(id="dspy", input=gold[INPUT], target=gold[OUTPUT])
        output = (getattr(pred, OUTPUT, None) or "") if pred is not None else ""
        answer, score = task.score(output, example)
        if not feedback:
            return score
        said = f"The answer read from your output was {answer!r}." if answer else "No answer could be read from your output."
        verdict = "correct" if score >= 1.0 else f"wrong: the expected answer is {gold[OUTPUT]!r}"
        return dspy.Prediction(score=score, feedback=f"{said} It is {verdict}.")

    return metric


@contextlib.contextmanager
def logged_to(path: Path) -> Iterator[None]:
    """DSPy's and litellm's logs and progress bars go to `path` instead of the terminal."""
    path.parent.mkdir(parents=True, exist_ok=True)
    loggers = [logging.getLogger(name) for name in ("dspy", "LiteLLM", "gepa", "optuna")]
    saved = [(lg, lg.handlers[:], lg.propagate) for lg in loggers]
    with open(path, "a", encoding="utf-8") as out:
        handler = logging.StreamHandler(out)
        for lg in loggers:
            lg.handlers, lg.propagate = [handler], False
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                yield
        finally:
            for lg, handlers, propagate in saved:
                lg.handlers, lg.propagate = handlers, propagate


def run_peer(name: str, task: Task, seed: int, url: str, meter: Meter, val_limit: int, log: Path,
             proposer_tokens: int | None = None) -> PeerRun:
    """Runs peer `name` on `task` under `meter`'s cap; the program it returned, as a graphopt Program.

    DSPy's own output goes to `log`; `proposer_tokens` bounds the answers of MIPROv2's proposer and
    GEPA's reflection (default: graphopt's optimizer level's 384).
    """
    train, val = _examples(task.train), _examples(task.val[:val_limit])
    program_model = program_lm(url, task, meter)
    student = task_module(task)
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=True)  # fresh: no peer feeds on another
    note = ""
    clock = time.perf_counter()
    settings = {"lm": program_model, "adapter": ProgramAdapter(), "usage_tracker": meter, "max_errors": 10**9}
    with logged_to(log), dspy.context(**settings):
        try:
            compiled = _compile(name, task, seed, optimizer_lm(url, meter, max_tokens=proposer_tokens), meter, student,
                                train, val)
        except CapReached as exc:  # the optimizer could not finish inside the cap and returned nothing
            compiled, note = student, f"cut by the cap before it returned a program ({exc}): {ZERO_SHOT_KEPT}"
        except (AdapterParseError, ContextWindowExceededError) as exc:
            # DSPy itself gave up on this model's output (MIPROv2's proposer, on the 135M model):
            # the user gets no program; the row says so. Any other error is the harness's to report.
            compiled = student
            note = f"DSPy raised {type(exc).__name__} ({_first_line(exc)}): no program returned, {ZERO_SHOT_KEPT}"
    if meter.refused and not note:
        note = f"{meter.refused} calls refused by the cap"
    note = "; ".join(part for part in (note, f"{time.perf_counter() - clock:.0f}s") if part)
    return PeerRun(to_program(compiled, task), dict(meter.tokens), note)


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:160] if lines else ""


def _compile(name, task, seed, proposer, meter, student, train, val):  # noqa: ANN001, ANN202
    metric = task_metric(task)
    if name == "dspy BootstrapFewShot":
        return dspy.BootstrapFewShot(metric=metric).compile(student, trainset=train)
    if name == "dspy BootstrapFewShotWithRandomSearch":
        optimizer = dspy.BootstrapFewShotWithRandomSearch(metric=metric, num_threads=THREADS)
        return optimizer.compile(student, trainset=train, valset=val)
    if name == "dspy MIPROv2 light":
        optimizer = dspy.MIPROv2(metric=metric, prompt_model=proposer, auto="light",
                                 num_threads=THREADS, seed=seed, verbose=False)
        return optimizer.compile(student, trainset=train, valset=val)
    if name == "dspy GEPA":
        calls = max(len(val) + 10, (meter.cap or 10**6) // 50)
        optimizer = dspy.GEPA(metric=task_metric(task, feedback=True), max_metric_calls=calls,
                              reflection_lm=proposer, num_threads=THREADS, seed=seed)
        return optimizer.compile(student, trainset=train, valset=val)
    raise ValueError(f"unknown peer {name!r}: use {', '.join(PEERS)}")
