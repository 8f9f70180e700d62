"""`graphopt config show`: the resolved settings of every level, where each came from, secrets masked."""

from __future__ import annotations

__all__ = ["config_app", "show_command"]

import os
from typing import Any

import typer
from rich.table import Table

from ..lm import LEVELS
from ..lm.providers import resolved_endpoint
from ..lm.secrets import MASK, is_secret_key, scrub_text
from .app import app
from .common import CacheDir, ConfigFile, JudgeModel, MetaModel, NoCache, OptimizerModel, ProgramModel, SetOption, console, resolve

config_app = typer.Typer(
    help="Show and check the model settings (graphopt.toml, environment, flags).", no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(config_app, name="config")


def _shown(name: str, value: Any) -> str:
    """A value as printed: secrets masked, an api_key_env with whether it is set."""
    last = name.rsplit(".", 1)[-1]
    if last == "api_key_env":
        return "" if not value else f"{value} ({'set' if os.environ.get(value) else 'NOT SET'})"
    if is_secret_key(last) and value not in (None, ""):
        return MASK
    if isinstance(value, dict):
        return str({k: MASK if is_secret_key(k) else v for k, v in value.items()})
    return "" if value is None else scrub_text(str(value))


def _key_row(transport: Any, cfg: Any) -> str:
    """Which variable holds the level's key and whether it is set (never the key)."""
    if cfg.model.startswith("local/"):
        return "none needed (the embedded model)"
    if cfg.api_key_env:
        return f"{cfg.api_key_env} ({'set' if os.environ.get(cfg.api_key_env) else 'NOT SET'})"
    if cfg.api_base:
        return "none needed unless your server asks for one (set api_key_env)"
    missing = transport.missing_key(cfg.model, {})
    if missing:
        return f"{missing} (NOT SET)"
    try:
        found = transport.litellm.validate_environment(cfg.model)
    except Exception:
        return "the provider's variable (litellm could not say which)"
    names = [k for k in found.get("missing_keys") or [] if k.endswith(("_KEY", "_TOKEN"))]
    return "set in the environment" if found.get("keys_in_environment") and not names else "none needed"


@config_app.command("show")
def show_command(
    config_file: ConfigFile = None,
    overrides: SetOption = None,
    program_model: ProgramModel = None,
    optimizer_model: OptimizerModel = None,
    meta_model: MetaModel = None,
    judge_model: JudgeModel = None,
    cache_dir: CacheDir = None,
    no_cache: NoCache = False,
) -> None:
    """Print every setting with its value and source (flag, env, file, default); exit 2 on a problem."""
    from ..lm.transport import LiteLLMTransport

    settings = resolve(
        program_model, optimizer_model, meta_model, judge_model=judge_model,
        config_file=config_file, overrides=overrides, cache_dir=cache_dir, no_cache=no_cache,
    )  # fmt: skip
    config = settings.config
    transport = LiteLLMTransport()
    for level in LEVELS:
        transport.check_model(config.level(level).model)
    console.print(f"config file: {settings.file or 'none (no ./graphopt.toml, no $GRAPHOPT_CONFIG, no --config)'}")
    table = Table(title="Settings (flags > environment > file > defaults)", title_justify="left")
    for column in ("setting", "value", "source"):
        table.add_column(column)
    for name, value in settings.values.items():
        shown = _shown(name, value)
        if name in ("local.instances", "local.threads") and value is None:
            shown = "auto"
        table.add_row(name, shown, settings.sources[name])
    for level in LEVELS:
        cfg = config.level(level)
        endpoint = resolved_endpoint(cfg.model, cfg.provider_extra(environ={cfg.api_key_env: "x"} if cfg.api_key_env else {}))
        table.add_row(f"{level} endpoint", scrub_text(endpoint) if endpoint else "the provider's default", "resolved")
        if cfg.model.startswith("local/"):
            price, source = "free (the embedded model)", "embedded"
        elif cfg.priced:
            price, source = f"${cfg.input_price_per_million:g} / ${cfg.output_price_per_million:g} per million in/out", "config"
        elif transport.price_known(cfg.model):
            price, source = "litellm's price map", "litellm"
        else:
            price, source = f"unknown: dollars not counted; set {level}.input_price_per_million and .output_price_per_million", "none"
        table.add_row(f"{level} price", price, source)
        table.add_row(f"{level} key", _key_row(transport, cfg), "environment")
    console.print(table)
