"""Writing a run's JSON outputs."""

from __future__ import annotations

__all__ = ["write_json"]

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError


def write_json(path: Path, data: Any) -> None:
    """`data` as indented JSON in `path` (its folder made).

    Raises:
        ConfigError: the file cannot be written (one line).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from exc
