"""Metrics by name: how an extracted answer is scored against an example's target, in [0, 1].

A metric is written `NAME`, `NAME:ARG` (e.g. `numeric:0.01`, a tolerance) or `module:function`,
the user's own function `(answer: str, example: Example) -> float` (imported, never generated).

Most metrics are plain functions. A `ModelMetric` asks a model instead (`judge`, an LLM judge on
its own `judge` level): it is scored with `await score_answer(metric, answer, example, lm)`,
which is how evaluation scores every metric, plain or not.

Example:
    >>> from graphopt.types import Example
    >>> ex = Example(id="1", input="2+2?", target="4")
    >>> get_metric("numeric")("4.0", ex), get_metric("contains")("it is 4", ex)
    (1.0, 1.0)
"""

from __future__ import annotations

__all__ = ["exact_match", "METRICS", "get_metric", "metric_names", "score_answer", "metric_levels", "normalize", "token_f1", "numeric_match", "contains",
           "normalized_exact", "regex_match", "choice_letter", "load_user_function"]

import importlib
import inspect
import re
import string
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, did_you_mean
from ..types import Example
from .extract import extract_letter
from .judge import judge_metric
from .model_metric import MetricScore, ModelMetric

if TYPE_CHECKING:
    from ..lm import LM


def exact_match(answer: str, example: Example) -> float:
    """Strict exact match: 1.0 when the extracted answer equals the target, else 0.0."""
    return 1.0 if answer == example.target else 0.0

Metric = Callable[[str, Example], float]


async def score_answer(metric: Metric | ModelMetric, answer: str, example: Example, lm: LM) -> MetricScore:
    """The score of `answer` by any metric: a plain one is called, a model metric awaited.

    Raises:
        LLMError: a model metric's call failed (after its retries).
        BudgetExceeded: a cap of the model metric's level was reached.
    """
    if isinstance(metric, ModelMetric):
        return await metric.ascore(answer, example, lm)
    return MetricScore(float(metric(answer, example)))


def metric_levels(metric: Any) -> tuple[str, ...]:
    """The LM levels `metric` calls: none for a plain function."""
    return tuple(metric.levels) if isinstance(metric, ModelMetric) else ()

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def normalize(text: str) -> str:
    """Lowercase, punctuation and articles dropped, whitespace squeezed (SQuAD's normalization)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def normalized_exact(answer: str, example: Example) -> float:
    """1.0 when answer and target are equal after `normalize`."""
    return 1.0 if normalize(answer) == normalize(example.target) else 0.0


def contains(answer: str, example: Example) -> float:
    """1.0 when the normalized target occurs in the normalized answer (as whole words)."""
    target, said = normalize(example.target), normalize(answer)
    return 1.0 if target and f" {target} " in f" {said} " else 0.0


def token_f1(answer: str, example: Example) -> float:
    """The F1 of the normalized answer's and target's word bags (SQuAD's F1)."""
    said, want = normalize(answer).split(), normalize(example.target).split()
    if not said or not want:
        return 1.0 if said == want else 0.0
    common = sum((Counter(said) & Counter(want)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(said), common / len(want)
    return 2 * precision * recall / (precision + recall)


def _last_number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    if not found:
        return None
    try:
        return float(found[-1].replace(",", "").rstrip("."))
    except ValueError:
        return None


def numeric_match(answer: str, example: Example, tolerance: float = 1e-6) -> float:
    """1.0 when the last number in the answer is within `tolerance` of the target's (relative above 1)."""
    said, want = _last_number(answer), _last_number(example.target)
    if said is None or want is None:
        return 0.0
    return 1.0 if abs(said - want) <= tolerance * max(1.0, abs(want)) else 0.0


def choice_letter(answer: str, example: Example) -> float:
    """1.0 when the letter read from the answer ("(B)", "B.", "Answer: B") is the target letter."""
    letters = "ABCDEFGHIJ"
    want = extract_letter(example.target, letters) or example.target.strip().upper()
    return 1.0 if extract_letter(answer, letters) == want else 0.0


def regex_match(answer: str, example: Example) -> float:
    """1.0 when the answer matches the target read as a regular expression (whole answer, stripped)."""
    try:
        return 1.0 if re.fullmatch(example.target.strip(), answer.strip()) else 0.0
    except re.error:
        return 0.0


@dataclass(frozen=True)
class _Entry:
    build: Callable[[str | None], Metric | ModelMetric]
    doc: str
    arg: str = ""


def _numeric(arg: str | None) -> Metric:
    try:
        tolerance = 1e-6 if arg is None else float(arg)
    except ValueError:
        raise ConfigError(f"metric numeric:{arg}: the tolerance must be a number, e.g. numeric:0.01") from None
    if tolerance < 0:
        raise ConfigError(f"metric numeric:{arg}: the tolerance must not be negative")
    return lambda answer, example: numeric_match(answer, example, tolerance)


def _judge(arg: str | None) -> ModelMetric:
    return judge_metric(arg)


METRICS: dict[str, _Entry] = {
    "exact": _Entry(lambda arg: exact_match, "the answer equals the target exactly"),
    "normalized_exact": _Entry(lambda arg: normalized_exact, "equal after lowercasing, dropping punctuation and articles"),
    "contains": _Entry(lambda arg: contains, "the target occurs in the answer (normalized, whole words)"),
    "numeric": _Entry(_numeric, "the last number equals the target's within a tolerance (numeric:0.01)", "tolerance"),
    "token_f1": _Entry(lambda arg: token_f1, "F1 of the answer's and target's words"),
    "choice_letter": _Entry(lambda arg: choice_letter, "the choice letter read from the answer equals the target's"),
    "regex": _Entry(lambda arg: regex_match, "the answer matches the target read as a regular expression"),
    "judge": _Entry(_judge, "the judge level's model scores the answer against the target and a rubric (judge:RUBRIC_FILE)", "rubric file"),
}


def metric_names() -> list[str]:
    """The registered metric names, sorted."""
    return sorted(METRICS)


def load_user_function(ref: str, *, params: int, what: str, signature: str) -> Callable:
    """The function `module:function` names, checked to take `params` positional arguments.

    The current directory is importable, as it is for `python -m`, so `my_metrics:score` finds
    ./my_metrics.py.

    Raises:
        ConfigError: it cannot be imported, is missing, is not callable or has the wrong signature.
    """
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{what} {ref!r} is not MODULE:FUNCTION")
    if str(Path.cwd()) not in sys.path and "" not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001  (any import failure of user code ends the same way)
        raise ConfigError(
            f"{what} {ref!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc}); "
            "run from the folder that holds it or put it on PYTHONPATH"
        ) from None
    fn = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
        if fn is None:
            raise ConfigError(f"{what} {ref!r}: {module_name} has no {attr!r}")
    if not callable(fn):
        raise ConfigError(f"{what} {ref!r} is not a function")
    try:
        sig = inspect.signature(fn)
        sig.bind(*range(params))
    except TypeError:
        raise ConfigError(f"{what} {ref!r} has the signature {sig}: it must be {signature}") from None
    except ValueError:
        pass  # builtins without a signature: trust them
    return fn


def _user_metric(ref: str) -> Metric:
    fn = load_user_function(ref, params=2, what="metric", signature="(answer: str, example: Example) -> float")

    def metric(answer: str, example: Example) -> float:
        return max(0.0, min(1.0, float(fn(answer, example))))

    metric.__name__ = ref
    return metric


def get_metric(rule: str) -> Metric | ModelMetric:
    """The metric a rule names.

    Args:
        rule: a name ("exact", "contains", ...), `numeric:TOLERANCE`, `judge:RUBRIC_FILE`, or
            `module:function`.

    Returns:
        A function `(answer, example) -> float` in [0, 1] (a user function's value is clamped),
        or a `ModelMetric` (judge) scored with `score_answer`.

    Raises:
        ConfigError: an unknown name (with the closest names), a bad argument, or a user function
            that cannot be imported or has the wrong signature.
    """
    name, sep, arg = rule.partition(":")
    key = name.strip().lower()
    entry = METRICS.get(key)
    if entry is not None:
        if sep and not entry.arg:
            raise ConfigError(f"metric {key!r} takes no argument: write {key}")
        return entry.build(arg if sep else None)
    if sep and arg:
        return _user_metric(rule)
    raise ConfigError(
        f"unknown metric {rule!r}{did_you_mean(key, METRICS)}: use one of {', '.join(metric_names())} "
        "or MODULE:FUNCTION for your own"
    )
