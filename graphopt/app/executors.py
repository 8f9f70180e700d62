"""Where a search's evaluations run: this process or a Ray cluster."""

from __future__ import annotations

__all__ = ["EXECUTORS", "make_executor", "check_executor", "check_ray_address"]

from ..errors import ConfigError, did_you_mean

EXECUTORS = ("local", "ray")


def check_ray_address(address: str | None) -> None:
    """Raises ConfigError for a --ray-address that is neither auto nor ray://HOST:PORT."""
    if address is not None and address != "auto" and not address.startswith("ray://"):
        raise ConfigError(f"--ray-address {address!r} is not auto or ray://HOST:PORT")


def check_executor(name: str, ray_address: str | None) -> None:
    """The executor options, checked without starting anything (the dry run checks them too).

    Raises:
        ConfigError: an unknown executor, --ray-address without --executor ray, or a bad address.
    """
    if name not in EXECUTORS:
        raise ConfigError(f"unknown --executor {name!r}{did_you_mean(name, EXECUTORS)}: use local or ray")
    if name == "local" and ray_address:
        raise ConfigError("--ray-address needs --executor ray")
    if name == "ray":
        check_ray_address(ray_address)


def make_executor(name: str, task, lm, parallel: int | None, ray_address: str | None):
    """The executor a command asked for.

    Raises:
        ConfigError: an unknown executor, --ray-address without --executor ray, or no Ray.
    """
    from ..search.executor import LocalExecutor, default_parallel

    check_executor(name, ray_address)
    if name == "local":
        return LocalExecutor(task, lm, parallel or default_parallel(lm))
    from ..search.ray_executor import RayExecutor

    return RayExecutor(task, lm, address=ray_address, parallel=parallel)
