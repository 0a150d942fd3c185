"""The ``kizuna`` command: global options, error policy, and each field's own commands mounted below it.

Error policy (``main``): bad input (:class:`kizuna.errors.InputError`) prints ``kizuna: error: <message>``
on stderr and exits 2; any other exception prints ``kizuna: internal error: <type>: <message>`` and exits
1; usage errors keep click's message and exit code 2. ``--debug`` adds the traceback.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

import typer

from kizuna import __version__
from kizuna.core.console import debug_enabled, quiet_enabled, set_flags
from kizuna.eo.cli import app as eo_app
from kizuna.errors import InputError
from kizuna.gnss.cli import app as gnss_app
from kizuna.lunar.nav.cli import app as lunar_nav_app
from kizuna.lunar.surface.cli import app as lunar_surface_app
from kizuna.ssa.cli import app as ssa_app

__all__ = ["app", "main", "debug_enabled", "quiet_enabled"]

# debug_enabled and quiet_enabled live in kizuna.core.console, re-exported here for existing callers.

app = typer.Typer(
    name="kizuna",
    help="Open software for the fields in which ISRO and JAXA work together.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(lunar_nav_app, name="lunar")
lunar_nav_app.add_typer(lunar_surface_app, name="surface")
app.add_typer(ssa_app, name="ssa")
app.add_typer(gnss_app, name="gnss")
app.add_typer(eo_app, name="eo")


def _print_version(value: bool) -> None:
    """Print the version and stop, for ``--version``."""
    if value:
        typer.echo(f"kizuna {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Show the version and exit."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of errors."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print no summaries or progress."),
) -> None:
    """Store the global options for the subcommands."""
    set_flags(quiet=quiet, debug=debug)


def _one_line(text: str) -> str:
    """Collapse a message to one line."""
    return " ".join(str(text).split())


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``kizuna`` command on argv (default sys.argv[1:]) and exit with its status code."""
    args = list(sys.argv[1:] if argv is None else argv)
    set_flags(quiet=False, debug=False)
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=args, prog_name="kizuna", standalone_mode=False)
        code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
    except typer.TyperException as exc:  # usage errors (exit 2) and other errors of the command parser
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            print(f"kizuna: error: {_one_line(exc.format_message())}", file=sys.stderr)
        code = exc.exit_code
    except typer.Abort:
        print("kizuna: aborted", file=sys.stderr)
        code = 130
    except InputError as exc:
        if debug_enabled():
            traceback.print_exc()
        print(f"kizuna: error: {_one_line(str(exc))}", file=sys.stderr)
        code = 2
    except Exception as exc:  # anything else is a bug: say so in one line, exit 1
        if debug_enabled():
            traceback.print_exc()
        hint = "" if debug_enabled() else " (run with --debug for the traceback)"
        print(f"kizuna: internal error: {type(exc).__name__}: {_one_line(str(exc))}{hint}", file=sys.stderr)
        code = 1
    raise SystemExit(code)


if __name__ == "__main__":
    main()
