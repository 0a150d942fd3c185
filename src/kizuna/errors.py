"""Typed errors raised by the kizuna library; the command line turns them into exit codes."""


class KizunaError(Exception):
    """Base class of every error kizuna raises on purpose."""


class InputError(KizunaError, ValueError):
    """Bad input: a missing or malformed file, line, field or value (CLI exit code 2).

    The message names the file, the line or field, and what was expected.
    """


class ComputationError(KizunaError, RuntimeError):
    """A computation could not produce a valid result (e.g. a solver did not converge)."""
