"""Tasks by name, with did-you-mean."""

from __future__ import annotations

__all__ = ["register_task", "get_task", "task_names", "source_option", "TaskFactory"]

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import TaskError, did_you_mean
from .base import Task


@dataclass(frozen=True)
class TaskFactory:
    """A registered task: its builder, one line for `graphopt tasks`, and the option `--source` fills."""

    name: str
    build: Callable[..., Task]
    description: str
    source: str = "source"


_REGISTRY: dict[str, TaskFactory] = {}


def register_task(
    name: str, description: str, source: str = "source"
) -> Callable[[Callable[..., Task]], Callable[..., Task]]:
    """Decorator: `@register_task("word_sorting", "...")` on a function returning a Task.

    Args:
        name: the task's name.
        description: one line for `graphopt tasks`.
        source: the builder's option that the CLI's `--source` (and a study's `source:`) fills,
            e.g. "path" for the file task.
    """

    def wrap(build: Callable[..., Task]) -> Callable[..., Task]:
        _REGISTRY[name] = TaskFactory(name, build, description, source)
        return build

    return wrap


def _load_builtins() -> None:
    from . import bbh, custom, hub, multiple_choice  # noqa: F401  (registers on import)


def task_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def factories() -> list[TaskFactory]:
    _load_builtins()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def source_option(name: str) -> str:
    """The option of task `name` that `--source` fills ("source" for a task not registered)."""
    _load_builtins()
    factory = _REGISTRY.get(name)
    return factory.source if factory is not None else "source"


def get_task(name: str, **options) -> Task:
    """Builds the task registered as `name`; options go to its builder (seed, sizes, source, ...).

    Raises:
        TaskError: unknown name (with the closest names), or data that cannot be loaded.
    """
    _load_builtins()
    factory = _REGISTRY.get(name)
    if factory is None:
        raise TaskError(
            f"unknown task {name!r}{did_you_mean(name, _REGISTRY)}: run `graphopt tasks` to list them"
        )
    _check_options(factory, options)
    return factory.build(**options)


def _check_options(factory: TaskFactory, options: dict) -> None:
    """Unknown option names become a TaskError naming the options the builder takes."""
    params = inspect.signature(factory.build).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key in options:
        if key not in accepted:
            raise TaskError(
                f"task {factory.name!r} has no option {key!r}{did_you_mean(key, accepted)}: "
                f"it takes {', '.join(accepted) or 'no options'}{_hint(factory, key)}"
            )


def _hint(factory: TaskFactory, key: str) -> str:
    """Where an option that belongs elsewhere goes: the CLI's name of the source, or the seed text of any task."""
    if key == "source" and factory.source != "source":
        return f" (--source fills {factory.source}=)"
    if key in ("instruction", "output_format"):
        return f" (any task's seed program: task.with_seed_text({key}=...))"
    return ""
