"""Metrics by name and the user's own `module:function`, with their one-line errors."""

from __future__ import annotations

import sys

import pytest

from graphopt.errors import ConfigError
from graphopt.tasks.metrics import get_metric, metric_names
from graphopt.types import Example


def ex(target: str) -> Example:
    return Example(id="e", input="q", target=target)


@pytest.mark.parametrize(
    ("rule", "answer", "target", "score"),
    [
        ("exact", "Paris", "Paris", 1.0),
        ("exact", "paris", "Paris", 0.0),
        ("normalized_exact", "The Paris!", "paris", 1.0),
        ("normalized_exact", "Paris, France", "paris", 0.0),
        ("contains", "I think it is Paris, France.", "paris", 1.0),
        ("contains", "Parisian", "paris", 0.0),
        ("numeric", "The total is 1,234.0", "1234", 1.0),
        ("numeric", "12", "13", 0.0),
        ("numeric:0.1", "10.5", "10", 1.0),
        ("numeric:0.01", "10.5", "10", 0.0),
        ("numeric", "no number", "3", 0.0),
        ("token_f1", "red green", "green blue", 0.5),
        ("token_f1", "", "", 1.0),
        ("choice_letter", "Answer: (B)", "B", 1.0),
        ("choice_letter", "(C)", "(B)", 0.0),
        ("regex", "2024-01-05", r"\d{4}-\d\d-\d\d", 1.0),
        ("regex", "Jan 5", r"\d{4}-\d\d-\d\d", 0.0),
        ("regex", "x", "(", 0.0),
    ],
)
def test_each_metric_scores_as_named(rule, answer, target, score):
    assert get_metric(rule)(answer, ex(target)) == pytest.approx(score)


def test_every_registered_metric_is_covered():
    assert set(metric_names()) == {"exact", "normalized_exact", "contains", "numeric", "token_f1", "choice_letter", "regex", "judge"}  # judge: test_tasks_judge.py


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_scores.py").write_text(
        "def half(answer, example):\n    return 0.5 if answer else 2.0\n"
        "def one_arg(answer):\n    return 1.0\n"
        "NOT_A_FUNCTION = 3\n"
    )
    (tmp_path / "broken_scores.py").write_text("import nothing_like_this\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("my_scores", "broken_scores"):
        sys.modules.pop(name, None)


def test_a_user_metric_is_imported_and_its_value_clamped(user_module):
    metric = get_metric("my_scores:half")
    assert metric("x", ex("y")) == 0.5
    assert metric("", ex("y")) == 1.0  # 2.0 clamped to [0, 1]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("containz", "unknown metric 'containz' (did you mean 'contains'?)"),
        ("numeric:abc", "the tolerance must be a number"),
        ("exact:1", "metric 'exact' takes no argument"),
        ("no_such_module_here:f", "cannot import 'no_such_module_here' (ModuleNotFoundError"),
        ("broken_scores:f", "cannot import 'broken_scores' (ModuleNotFoundError"),
        ("my_scores:missing", "my_scores has no 'missing'"),
        ("my_scores:NOT_A_FUNCTION", "is not a function"),
        ("my_scores:one_arg", "has the signature (answer): it must be (answer: str, example: Example) -> float"),
    ],
)
def test_bad_metrics_are_config_errors_naming_the_fix(user_module, rule, message):
    with pytest.raises(ConfigError) as info:
        get_metric(rule)
    assert message in str(info.value)
