"""A command's models: the per-level model flags, settings file, overrides and cache, as one request."""

from __future__ import annotations

__all__ = ["ModelRequest", "Connect", "Warn"]

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..lm import LEVELS, LM, OPTIONAL_LEVELS
from ..lm.budget import Budget
from ..lm.settings import Settings, resolve_settings

Warn = Callable[[str], None]


def _quiet(text: str) -> None:
    """Drops a warning (the default outside the CLI, which prints them)."""


@dataclasses.dataclass(frozen=True)
class ModelRequest:
    """The `--LEVEL-model`, `--config`, `--set`, `--cache-dir` and `--no-cache` flags of a command.

    Example:
        >>> ModelRequest(program="fake/p").settings().config.level("program").model
        'fake/p'
    """

    program: str | None = None
    optimizer: str | None = None
    meta: str | None = None
    judge: str | None = None
    config_file: Path | None = None
    overrides: tuple[str, ...] = ()
    cache_dir: Path | None = None
    no_cache: bool = False

    @classmethod
    def pick(cls, options: dict[str, Any]) -> ModelRequest:
        """The request from a command's options (its `locals()`: `program_model`, ..., `overrides`)."""
        return cls(
            program=options.get("program_model"), optimizer=options.get("optimizer_model"),
            meta=options.get("meta_model"), judge=options.get("judge_model"), config_file=options.get("config_file"),
            overrides=tuple(options.get("overrides") or ()), cache_dir=options.get("cache_dir"),
            no_cache=bool(options.get("no_cache")),
        )

    def settings(self, warn: Warn = _quiet) -> Settings:
        """The settings: flags, then environment, then the config file, then defaults."""
        flags: dict[str, tuple[Any, str]] = {}
        if self.no_cache:
            flags["cache_dir"] = ("off", "flag --no-cache")
        elif self.cache_dir is not None:
            flags["cache_dir"] = (str(self.cache_dir), "flag --cache-dir")
        models = {"program": self.program, "optimizer": self.optimizer, "meta": self.meta, "judge": self.judge}
        settings = resolve_settings(self.config_file, self.overrides, models, flags=flags)
        for warning in settings.warnings:
            warn(f"warning: {warning}")
        return settings

    def connect(
        self, *, budget: Budget | None = None, levels: tuple[str, ...] | None = None, warn: Warn = _quiet
    ) -> LM:
        """An LM client, with the settings and models checked before anything is spent.

        Args:
            budget: the run's caps; a dollar cap on a level with no known price is refused.
            levels: the levels the run calls: the price warning and the dollar-cap check look at
                these. Default: every level but the optional ones (judge).
            warn: called with each warning line (settings, unknown prices).

        Raises:
            ConfigError: a setting, a model or a cap that cannot be used (one line per problem).
        """
        lm = LM(self.settings(warn).config, budget=budget)
        lm.check_models()
        if levels is None:
            levels = tuple(level for level in LEVELS if level not in OPTIONAL_LEVELS)
        unpriced = [level for level in levels if not lm.price_known(level)]
        if budget is not None:
            capped = [
                level for level in unpriced
                if budget.total.dollars is not None or (budget.levels.get(level) and budget.levels[level].dollars is not None)
            ]  # fmt: skip
            if capped:
                level = capped[0]
                raise ConfigError(
                    f"--max-dollars cannot be enforced: no price is known for the {level} model {lm.model(level)!r}; "
                    f"set {level}.input_price_per_million and {level}.output_price_per_million (config file or --set)"
                )
        for level in unpriced:
            warn(
                f"warning: no price known for the {level} model {lm.model(level)!r}: its dollars are not counted "
                f"(\"$?\" below); set {level}.input_price_per_million and {level}.output_price_per_million"
            )
        return lm


Connect = Callable[..., LM]
"""Opens the LM of a run: `connect(models, budget=..., levels=...)` (default: `ModelRequest.connect`)."""
