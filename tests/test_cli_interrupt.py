"""Ctrl-C stops a command at once, says so in one line and exits 130 (the embedded model too)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.integration
def test_ctrl_c_during_local_generation_stops_within_seconds_with_one_line(tmp_path):
    command = [sys.executable, "-m", "graphopt", "eval", "--task", "word_sorting", "--difficulty", "easy",
               "--program", "cot", "--limit", "40", "--no-cache"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and "word_sorting:" not in (process.stdout.readline() or ""):
        pass
    time.sleep(6)  # inside the generations (40 reasoning answers take minutes)
    sent = time.time()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert time.time() - sent < 10, "the interrupt waited for the generations in progress"
    assert process.returncode == 130
    assert err.strip().splitlines()[-1] == "error: interrupted (a search can continue with --resume)"
