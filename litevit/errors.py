"""The one family of errors a litevit user can cause.

The CLI prints a ``LitevitError`` as one line and exits with code 2; anything else is a bug
and keeps its traceback.
"""


class LitevitError(Exception):
    """Base class: an error in what the user asked for, printed as one sentence."""


class UnknownModelError(LitevitError, KeyError):
    """A model name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class InputSizeError(LitevitError, ValueError):
    """An image size the model cannot take."""


class CheckpointError(LitevitError):
    """A checkpoint that cannot be read or does not fit the model."""


class MissingDependencyError(LitevitError, ImportError):
    """An optional package that this feature needs is not installed."""


class DataError(LitevitError):
    """An image folder or data set that cannot be used (missing, empty, too small, unreadable)."""
