"""Resolved model settings: flags > environment > config file > defaults, with the source of each.

The config file is TOML, `graphopt.toml` in the working directory, `$GRAPHOPT_CONFIG`, or the
file given with `--config`:

    cache_dir = "~/.cache/graphopt"
    max_retries = 4

    [program]
    model = "openai/qwen2.5-7b"
    api_base = "http://127.0.0.1:8000/v1"
    api_key_env = "MY_SERVER_KEY"        # the key itself stays in the environment
    temperature = 0.0
    input_price_per_million = 0.15       # dollars, for models litellm does not price
    output_price_per_million = 0.60

    embedding_model = "openai/text-embedding-3-small"   # for retrieval by meaning (optional)

    [program.extra]                      # more provider arguments
    top_p = 0.9

    [judge]                              # the model of the `judge` metric (an LLM judge)
    model = "gpt-4o-mini"

    [local]                              # the embedded model's pool
    instances = 2

The environment names each setting `GRAPHOPT_<LEVEL>_<KEY>` (GRAPHOPT_PROGRAM_API_BASE) or
`GRAPHOPT_<KEY>` for the top-level ones (GRAPHOPT_CACHE_DIR, GRAPHOPT_LOCAL_INSTANCES). Flags are
`--program-model` (and --optimizer-model, --meta-model, --judge-model) and the generic `--set LEVEL.KEY=VALUE` (`--set program.extra.top_p=0.9`).

Example:
    >>> s = resolve_settings(overrides=["program.temperature=0.5"], env={}, cwd=Path("/nonexistent"))
    >>> s.config.program.temperature, s.sources["program.temperature"]
    (0.5, 'flag --set')
"""

from __future__ import annotations

__all__ = ["Settings", "SettingsError", "resolve_settings", "find_config_file", "parse_override", "LEVEL_KEYS"]

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError, did_you_mean
from .config import LEVELS, LMConfig, LocalConfig
from .secrets import is_secret_key

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_NAME = "graphopt.toml"

# Settings of one level; "extra" is a table of provider arguments.
LEVEL_KEYS = (
    "model", "api_base", "api_key_env", "temperature", "max_tokens", "seed", "concurrency", "timeout",
    "input_price_per_million", "output_price_per_million", "transport", "embedding_model", "extra",
)  # fmt: skip
TOP_KEYS = ("cache_dir", "max_retries", "backoff_base", "backoff_max")
LOCAL_KEYS = tuple(LocalConfig.model_fields)
SECTIONS = (*LEVELS, "local")


class SettingsError(ConfigError):
    """Settings that cannot be used; `problems` has one line each."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass
class Settings:
    """The resolved settings: the config, and where each value came from.

    Attributes:
        config: the LMConfig every command builds its client from.
        values: {"program.model": value, ...} for every setting, defaults included.
        sources: {"program.model": "flag --program-model" | "env NAME" | "file PATH" | "default"}.
        file: the config file read, if any.
        warnings: environment variables named GRAPHOPT_* that are no setting (a typo is
            otherwise ignored silently), each with the close names.
    """

    config: LMConfig
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    warnings: list[str] = field(default_factory=list)


# GRAPHOPT_* variables that are not settings but are read elsewhere (the config file's path, a
# prompt length limit, the test suite's switches).
OTHER_VARIABLES = (
    "GRAPHOPT_CONFIG", "GRAPHOPT_MAX_PROMPT_CHARS", "GRAPHOPT_REQUIRE_LOCAL", "GRAPHOPT_REQUIRE_PG",
    "GRAPHOPT_REQUIRE_BENCH", "GRAPHOPT_ALLOW_NETWORK", "GRAPHOPT_TEST_PG_URL",
)


def known_variables() -> list[str]:
    """Every GRAPHOPT_* environment variable graphopt reads."""
    names = [f"GRAPHOPT_{key.upper()}" for key in TOP_KEYS]
    for section in SECTIONS:
        keys = LOCAL_KEYS if section == "local" else LEVEL_KEYS
        names += [f"GRAPHOPT_{section.upper()}_{key.upper()}" for key in keys if key != "extra"]
    return [*names, *OTHER_VARIABLES]


def unknown_variables(env: Mapping[str, str]) -> list[str]:
    """A warning for each GRAPHOPT_* variable in `env` graphopt does not read, with the close names."""
    known = known_variables()
    return [
        f"{name} is set but is no graphopt setting{did_you_mean(name, known)}; it is ignored"
        for name in sorted(env) if name.startswith("GRAPHOPT_") and name not in known
    ]


def find_config_file(config_file: Path | None, env: Mapping[str, str], cwd: Path) -> Path | None:
    """`--config`, else $GRAPHOPT_CONFIG, else ./graphopt.toml if present; None when there is none."""
    if config_file is not None:
        if not Path(config_file).is_file():
            raise ConfigError(f"config file not found: {config_file} (check the --config path)")
        return Path(config_file)
    named = env.get("GRAPHOPT_CONFIG")
    if named:
        if not Path(named).expanduser().is_file():
            raise ConfigError(f"config file not found: {named} (set GRAPHOPT_CONFIG to an existing file, or unset it)")
        return Path(named).expanduser()
    local = cwd / CONFIG_NAME
    return local if local.is_file() else None


def parse_override(text: str) -> tuple[str, Any]:
    """"program.temperature=0.3" -> ("program.temperature", 0.3): TOML values, else a plain string."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ConfigError(f"--set {text!r}: write LEVEL.KEY=VALUE, e.g. --set program.api_base=http://127.0.0.1:8000/v1")
    return name, _parse_value(raw.strip())


def _parse_value(raw: str) -> Any:
    if raw.lower() in ("none", "null"):
        return None
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _flatten(data: Mapping[str, Any], origin: str) -> tuple[dict[str, Any], list[str]]:
    """A config file's tables as {"program.model": value}; unknown names become problems."""
    flat: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in data.items():
        if name in SECTIONS and isinstance(value, Mapping):
            for key, inner in value.items():
                if name != "local" and key == "extra" and isinstance(inner, Mapping):
                    for arg, arg_value in inner.items():
                        flat[f"{name}.extra.{arg}"] = arg_value
                else:
                    flat[f"{name}.{key}"] = inner
        elif isinstance(value, Mapping):
            problems.append(f"{origin}: unknown level {name!r} (section [{name}]){did_you_mean(name, SECTIONS)}")
        else:
            flat[name] = value
    for name, value in flat.items():
        problem = _name_problem(name, origin)
        if problem and not _secret_problem(name, value, origin):  # the secret is the real mistake
            problems.append(problem)
    return flat, problems


def _name_problem(name: str, origin: str) -> str | None:
    """Why `name` ("program.api_base") is not a setting, with the close matches; None if it is."""
    parts = name.split(".")
    if len(parts) == 1:
        if name in TOP_KEYS:
            return None
        if name in SECTIONS:
            return f"{origin}: {name!r} is a section: name a key in it, e.g. {name}.{(LOCAL_KEYS if name == 'local' else LEVEL_KEYS)[0]}"
        return f"{origin}: unknown setting {name!r}{did_you_mean(name, [*TOP_KEYS, *SECTIONS])}"
    section = parts[0]
    if section not in SECTIONS:
        return f"{origin}: unknown level {section!r} in {name!r}{did_you_mean(section, SECTIONS)}"
    keys = LOCAL_KEYS if section == "local" else LEVEL_KEYS
    key = parts[1]
    if key not in keys:
        return f"{origin}: unknown key {key!r} in {name!r}{did_you_mean(key, keys)}"
    if key == "extra" and len(parts) < 3:
        return f"{origin}: name the provider argument: {section}.extra.NAME"
    if key != "extra" and len(parts) > 2:
        return f"{origin}: {section}.{key} has no sub-keys"
    return None


def _secret_problem(name: str, value: Any, origin: str) -> str | None:
    last = name.rsplit(".", 1)[-1]
    if last == "api_key_env" or not is_secret_key(last) or value is None or isinstance(value, (int, float)):
        return None
    level = name.split(".", 1)[0]
    hint = f"{level}.api_key_env" if level in LEVELS else "api_key_env"
    return f"{origin}: {name} holds a secret: keep keys in the environment and name the variable with {hint} = \"VAR\""


def _env_values(env: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    found: dict[str, tuple[Any, str]] = {}
    for key in TOP_KEYS:
        var = f"GRAPHOPT_{key.upper()}"
        if var in env:
            found[key] = (env[var] if key == "cache_dir" else _parse_value(env[var]), f"env {var}")
    for section in SECTIONS:
        keys = LOCAL_KEYS if section == "local" else LEVEL_KEYS
        for key in keys:
            if key == "extra":
                continue
            var = f"GRAPHOPT_{section.upper()}_{key.upper()}"
            if var in env:
                raw = env[var]
                value = raw if key in ("model", "api_base", "api_key_env", "transport") else _parse_value(raw)
                found[f"{section}.{key}"] = (value, f"env {var}")
    return found


def resolve_settings(
    config_file: Path | None = None,
    overrides: Iterable[str] = (),
    models: Mapping[str, str | None] | None = None,
    *,
    flags: Mapping[str, tuple[Any, str]] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Settings:
    """Resolves every setting from flags, environment, config file and defaults.

    Args:
        config_file: the `--config` file; else $GRAPHOPT_CONFIG, else ./graphopt.toml.
        overrides: `--set` values, "LEVEL.KEY=VALUE".
        models: the `--program-model`-style flags, {"program": "gpt-4o-mini", ...}; None skips one.
        flags: other flags as {setting: (value, "flag --NAME")}, e.g. {"cache_dir": (None, "flag --no-cache")}.
        env: the environment (default os.environ).
        cwd: where graphopt.toml is looked for (default the working directory).

    Returns:
        Settings with the LMConfig and the source of every value.

    Raises:
        SettingsError: one problem per line (unknown names with close matches, bad values,
            secrets written in a file or a flag).
        ConfigError: the config file is missing or is not valid TOML.
    """
    env = os.environ if env is None else env
    path = find_config_file(config_file, env, cwd or Path("."))
    problems: list[str] = []
    chosen: dict[str, tuple[Any, str]] = {}

    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        flat, found = _flatten(data, f"file {path}")
        problems += found
        chosen.update({name: (value, f"file {path}") for name, value in flat.items()})
    chosen.update(_env_values(env))
    for text in overrides:
        name, value = parse_override(text)
        problem = _name_problem(name, "--set")
        if problem and not _secret_problem(name, value, "--set"):  # the secret is the real mistake
            problems.append(problem)
        chosen[name] = (value, "flag --set")
    for level, model in (models or {}).items():
        if model is not None:
            chosen[f"{level}.model"] = (model, f"flag --{level}-model")
    chosen.update(flags or {})

    for name, (value, source) in chosen.items():
        problem = _secret_problem(name, value, source)
        if problem:
            problems.append(problem)
    # Check the values of the well-named settings too, so that one run lists every problem.
    valid = {name: entry for name, entry in chosen.items() if not _name_problem(name, "")}
    try:
        settings = _build(valid, path)
    except SettingsError as exc:
        problems += exc.problems
    if problems:
        raise SettingsError(problems)
    settings.warnings = unknown_variables(env)
    return settings


def _build(chosen: dict[str, tuple[Any, str]], path: Path | None) -> Settings:
    base = LMConfig()
    raw: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for name, (value, _) in chosen.items():
        parts = name.split(".")
        if len(parts) == 1:
            raw[name] = value
        elif parts[1] == "extra":
            sections[parts[0]].setdefault("extra", {})[".".join(parts[2:])] = value
        else:
            sections[parts[0]][parts[1]] = value
    if "cache_dir" in raw:
        value = raw["cache_dir"]
        off = value is None or str(value).strip().lower() in ("", "off", "none", "0", "false")
        raw["cache_dir"] = None if off else Path(str(value)).expanduser()

    problems: list[str] = []
    update: dict[str, Any] = {}
    for section, values in sections.items():
        if not values:
            continue
        current = base.local if section == "local" else base.level(section)
        merged = current.model_dump()
        if "extra" in values:
            merged["extra"] = {**merged.get("extra", {}), **values.pop("extra")}
        merged.update(values)
        try:
            update[section] = type(current).model_validate(merged)
        except ValidationError as exc:
            problems += _validation_lines(exc, section, chosen)
    try:
        config = LMConfig.model_validate({**base.model_dump(), **update, **raw})
    except ValidationError as exc:
        problems += _validation_lines(exc, None, chosen)
        config = base
    if problems:
        raise SettingsError(problems)

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in TOP_KEYS:
        values[key] = getattr(config, key)
    for section in SECTIONS:
        current = config.local if section == "local" else config.level(section)
        for key in (LOCAL_KEYS if section == "local" else LEVEL_KEYS):
            if key == "extra":
                for arg, arg_value in current.extra.items():
                    values[f"{section}.extra.{arg}"] = arg_value
            else:
                values[f"{section}.{key}"] = getattr(current, key)
    for name in values:
        sources[name] = chosen[name][1] if name in chosen else "default"
    return Settings(config=config, values=values, sources=sources, file=path)


def _validation_lines(exc: ValidationError, section: str | None, chosen: dict[str, tuple[Any, str]]) -> list[str]:
    lines = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        name = ".".join([section, *loc] if section else loc)
        origin = chosen.get(name, (None, "default"))[1]
        value = chosen.get(name, (error.get("input"),))[0]
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{origin}: {name} = {value!r}: {message}")
    return lines
