"""The task registry: every command reaches an application through `get(name)`.

TensorFlow-free: the CLI imports it to build its flags and to dispatch.

Example:

>>> from keras_lstm import tasks
>>> tasks.names()
['sentiment', 'translation']
>>> tasks.get("translation").monitor
'val_loss'
"""

from keras_lstm.core.errors import ConfigError
from keras_lstm.tasks.base import Splits, Task
from keras_lstm.tasks.config import SentimentConfig, TrainingConfig, TranslationConfig
from keras_lstm.tasks.sentiment import SentimentTask
from keras_lstm.tasks.translation import TranslationTask

TASKS = {"sentiment": SentimentTask("sentiment"), "translation": TranslationTask("translation")}


def names() -> list[str]:
    return list(TASKS)


def get(name: str) -> Task:
    """The task called `name`; one `ConfigError` line for an unknown one."""
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigError(f"unknown task {name!r}; expected one of {', '.join(TASKS)}") from None


__all__ = ["SentimentConfig", "Splits", "Task", "TrainingConfig", "TranslationConfig", "get",
           "names"]
