"""Errors that the CLI reports as one clear line instead of a traceback."""

from __future__ import annotations

from collections.abc import Iterable


class SigmabError(Exception):
    """Base class: a user-facing problem (bad input, missing file, misfit checkpoint)."""


class DataError(SigmabError):
    """A dataset file is missing, corrupt, or holds arrays of the wrong shape or range."""


class CheckpointError(SigmabError):
    """A checkpoint is missing, unreadable, or does not fit the architecture."""


class ConfigError(SigmabError):
    """A configuration value or command-line flag is invalid."""


class ArchitectureError(ConfigError, ValueError):
    """A model cannot be built from the given architecture arguments (a negative width, an unknown stem)."""


class InputError(SigmabError, ValueError):
    """A model input has the wrong shape or holds invalid values (e.g. NaN point coordinates)."""


class TrainingError(SigmabError):
    """Training diverged (a non-finite loss); the run stops before it saves anything from the bad step.
    ``what`` is the bare fact (where it diverged), for a command that gives its own advice on how to go on."""

    def __init__(self, message: str, *, what: str | None = None) -> None:
        super().__init__(message)
        self.what = what or message


def check_settings(checks: Iterable[tuple[bool, str]]) -> None:
    """Raise a :class:`ConfigError` with the message of the first ``(ok, message)`` pair that is not ok."""
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)
