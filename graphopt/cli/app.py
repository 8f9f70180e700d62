"""The `graphopt` command: the Typer app and the error handling every subcommand shares."""

from __future__ import annotations

__all__ = ["app", "main", "run"]

import sys

import typer

app = typer.Typer(
    name="graphopt",
    help="LLM prompt optimizers as typed graphs: evaluate, optimize, search, draw.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"graphopt {version('graphopt')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            print("graphopt (not installed)")
        raise typer.Exit(0)


@app.callback()
def _root(
    show_version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """LLM prompt optimizers as typed graphs: evaluate, optimize, search, draw."""


def main(argv: list[str] | None = None) -> int:
    """Runs the CLI. User mistakes print one line on stderr and exit with code 2.

    Error lines have their control characters escaped (`checks.clean_line`): a message quoting
    a file's content cannot move the cursor, recolour the terminal or span several lines.
    """
    from ..errors import GraphoptError, SpecError
    from . import commands  # noqa: F401  (registers the subcommands)
    from .checks import clean_line

    command = typer.main.get_command(app)
    try:
        if _no_args_help(command, argv if argv is not None else sys.argv[1:]):
            return 0
        result = command.main(args=argv if argv is not None else sys.argv[1:], prog_name="graphopt", standalone_mode=False)
    except _click_errors("UsageError") as exc:
        hint = f" (see graphopt {exc.ctx.info_name} --help)" if exc.ctx and exc.ctx.parent else " (see graphopt --help)"
        print(f"error: {clean_line(exc.format_message())}{hint}", file=sys.stderr)
        return 2
    except _click_errors("Abort"):
        print("error: aborted", file=sys.stderr)
        return 130
    except _click_errors("Exit") as exc:
        return exc.exit_code
    except SpecError as exc:  # every problem of a spec on its own line
        for problem in exc.problems or [str(exc)]:
            print(f"error: {clean_line(problem)}", file=sys.stderr)
        return 2
    except GraphoptError as exc:  # a settings error may list several problems, one line each
        # (a fatal LLMError is one line: provider, model and the fix)
        for problem in getattr(exc, "problems", None) or [str(exc)]:
            print(f"error: {clean_line(problem)}", file=sys.stderr)
        return 2
    except OSError as exc:  # the environment refused a file or directory the user named
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {clean_line(where + (exc.strerror or str(exc)))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted (a search can continue with --resume)", file=sys.stderr)
        return 130
    if result == 130:  # typer turns Ctrl-C into Exit(130), which click returns without a word
        print("error: interrupted (a search can continue with --resume)", file=sys.stderr)
    return result if isinstance(result, int) else 0


def _no_args_help(command, args: list[str]) -> bool:
    """A command group called with no subcommand (`graphopt`, `graphopt config`): its help on
    stdout, as the user asked for nothing else (click would raise it as an error)."""

    def is_group(cmd) -> bool:
        return hasattr(cmd, "list_commands") and hasattr(cmd, "get_command")

    group, path = command, ["graphopt"]
    for arg in args:
        if arg.startswith("-") or not is_group(group):
            return False
        group = group.get_command(group.context_class(group), arg)
        if group is None:
            return False
        path.append(arg)
    if not is_group(group):
        return False
    with group.context_class(group, info_name=" ".join(path)) as ctx:
        print(group.get_help(ctx))
    return True


def _click_errors(name: str) -> tuple[type[BaseException], ...]:
    """Click's exception class `name`, and typer's vendored copy of it (typer >= 0.24 raises its own)."""
    import importlib

    classes = []
    for module in ("click.exceptions", "typer._click.exceptions"):
        try:
            classes.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(classes)


def run() -> None:
    """The console-script entry point."""
    sys.exit(main())
