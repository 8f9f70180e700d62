"""`graphopt.app.task`: a command's task options as one request, built once."""

from __future__ import annotations

import pytest

from graphopt.app import TaskRequest
from graphopt.errors import ConfigError, TaskError


def test_a_request_builds_the_task_with_its_split_sizes_and_the_seed_program():
    task, program = TaskRequest("word_sorting", difficulty="easy", split_sizes="4,5,6").build()
    assert task.name == "word_sorting"
    assert (len(task.train), len(task.val), len(task.test)) == (4, 5, 6)
    assert program == task.seed_program


def test_a_shape_names_the_program_a_run_starts_from():
    task, program = TaskRequest("word_sorting", split_sizes="3,3,3", program="cot").build()
    assert program != task.seed_program and program.render() != task.seed_program.render()


def test_answer_rules_apply_to_the_built_task():
    task, _ = TaskRequest("word_sorting", split_sizes="3,3,3", metric="contains", extract="last_line").build()
    assert task.metric_rule == "contains" and task.extract_rule == "last_line"


def test_instruction_and_output_format_replace_a_built_in_tasks_seed_text():
    plain, _ = TaskRequest("word_sorting", split_sizes="3,3,3").build()
    task, program = TaskRequest("word_sorting", split_sizes="3,3,3", instruction="Sort them.\\nCarefully.").build()
    assert program == task.seed_program and program.instruction == "Sort them.\nCarefully."
    assert program.output_format == plain.seed_program.output_format  # not given: the task's own
    assert program.io == plain.seed_program.io  # still fed and read by the task
    only_format, _ = TaskRequest("word_sorting", split_sizes="3,3,3", output_format="").build()
    assert only_format.seed_program.output_format == "" and only_format.seed_program.instruction == plain.seed_program.instruction


def test_an_empty_instruction_is_a_one_line_task_error():
    with pytest.raises(TaskError, match="the instruction is empty"):
        TaskRequest("word_sorting", split_sizes="3,3,3", instruction=" ").build()


def test_pick_takes_the_task_options_from_a_commands_locals_and_ignores_the_rest():
    options = {"task": "word_sorting", "seed": 7, "metric": "contains", "program": "cot", "limit": 3, "out": None}
    assert TaskRequest.pick(options) == TaskRequest("word_sorting", seed=7, metric="contains", program="cot")
    assert TaskRequest.pick(options, program=None).program is None


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (TaskRequest("word_sorting", split_sizes="3,3"), "--split-sizes '3,3': write TRAIN,VAL,TEST"),
        (TaskRequest("word_sorting", input_key="q"), "task 'word_sorting' does not take --input-key: drop it"),
    ],
)
def test_a_bad_option_is_a_one_line_config_error(request_, message):
    with pytest.raises(ConfigError) as caught:
        request_.build()
    assert str(caught.value).startswith(message)


def test_prompt_tokens_grow_with_the_seed_programs_instruction():
    from graphopt.app.task import prompt_tokens

    task, _ = TaskRequest("word_sorting", split_sizes="5,3,3").build()
    longer = task.with_seed_program(task.seed_program.with_instruction(task.seed_program.instruction + " x" * 400))
    assert 1 <= prompt_tokens(task) < prompt_tokens(longer)
    assert prompt_tokens(longer) - prompt_tokens(task) == 200  # 800 more characters, a quarter of them
