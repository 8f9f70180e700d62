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
)


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
    return result if isinstance(result, int) else 0


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
