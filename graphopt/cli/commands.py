"""Imports every subcommand module so each registers itself on the app."""

from . import config_cmd, eval_cmd, graph_cmds, optimize_cmd, predict_cmd, report_cmd, search_cmd, study_cmd, tasks_cmd  # noqa: F401
