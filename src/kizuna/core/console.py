"""The global ``--quiet`` and ``--debug`` flags of the ``kizuna`` command, and the one way its commands print
a line for the user (on stderr, left out with ``--quiet``).

The top-level callback in :mod:`kizuna.cli` sets the flags; every field's command module reads them here.
"""

from __future__ import annotations

import typer

__all__ = ["debug_enabled", "quiet_enabled", "say", "set_flags"]

# Global options of the current invocation, set by the top-level callback.
_FLAGS = {"debug": False, "quiet": False}


def set_flags(*, quiet: bool, debug: bool) -> None:
    """Store the global ``--quiet`` and ``--debug`` options of the current invocation."""
    _FLAGS["quiet"] = bool(quiet)
    _FLAGS["debug"] = bool(debug)


def quiet_enabled() -> bool:
    """Return True when ``--quiet`` was given (no summaries or progress on stderr)."""
    return _FLAGS["quiet"]


def debug_enabled() -> bool:
    """Return True when ``--debug`` was given (show tracebacks)."""
    return _FLAGS["debug"]


def say(message: str) -> None:
    """Print one line on stderr unless ``--quiet`` was given."""
    if not _FLAGS["quiet"]:
        typer.echo(message, err=True)
