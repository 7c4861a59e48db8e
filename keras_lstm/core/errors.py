"""Exceptions raised where bad input enters the project.

Each carries a message meant for a person: it names the file, line or field
and says what was expected. The CLI prints it as one line and exits 2.
TensorFlow-free, like everything the runtimes import.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "ArtifactError",
    "ConfigError",
    "DataError",
    "ExportError",
    "KerasLSTMError",
    "first_line",
    "load_or_raise",
]

_T = TypeVar("_T")


class KerasLSTMError(Exception):
    """Base class of every error the CLI reports as one line."""


class DataError(KerasLSTMError, ValueError):
    """A data file, column, label or text is not what was expected."""


class ConfigError(KerasLSTMError, ValueError):
    """A run folder, configuration or command-line value is missing, malformed or of another task."""


class ArtifactError(KerasLSTMError, ValueError):
    """An export folder or artifact is missing, damaged or not what was expected."""


class ExportError(KerasLSTMError, RuntimeError):
    """An export failed, or an artifact does not match the Keras model."""


def first_line(error: BaseException, limit: int = 200) -> str:
    """The telling line of an exception's message (its type name when it has none).

    The first line, unless a later one names a class that could not be found
    (Keras' safe loading puts that deep in its message).
    """
    lines = str(error).strip().splitlines()
    for line in lines:
        if "Could not locate class" in line:
            return line.strip()[:limit]
    return lines[0][:limit] if lines else type(error).__name__


def load_or_raise(loader: Callable[[], _T], path: str | os.PathLike, kind: str,
                  error: type[KerasLSTMError] = ArtifactError) -> _T:
    """Calls `loader()`; any failure becomes one `error` line naming `path` and `kind`.

    Converters and runtimes raise many exception types for a damaged file
    (onnxruntime's, TFLite's, Keras' zip errors...): this is the one place
    that turns them into "PATH: cannot load the KIND model (reason)".
    """
    try:
        return loader()
    except KerasLSTMError:
        raise
    except Exception as cause:  # each library raises its own types for bad files
        raise error(f"{path}: cannot load the {kind} model ({first_line(cause)})") from None
