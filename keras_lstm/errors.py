"""Exceptions raised where bad input enters the project.

Each carries a message meant for a person: it names the file, line or field
and says what was expected. The CLI prints it as one line and exits non-zero.
"""


class KerasLSTMError(Exception):
    """Base class of every error the CLI reports as one line."""


class DataError(KerasLSTMError, ValueError):
    """A data file, column, label or text is not what was expected."""


class ConfigError(KerasLSTMError, ValueError):
    """A run folder or configuration is missing, malformed or of another task."""


class ExportError(KerasLSTMError, RuntimeError):
    """An export failed, or an artifact does not match the Keras model."""
