"""What the command line prints besides results: TensorFlow's start-up noise, silenced.

TensorFlow 2.21 writes log lines from C++ while it loads (oneDNN notes, CUDA
probes, "All log messages before absl::InitializeLog()...") straight to the
process's stderr, whatever TF_CPP_MIN_LOG_LEVEL says. `quiet_tensorflow()`
imports it with file descriptor 2 pointed at a temporary file, then passes
on every captured line that is not such noise, so real errors still show.
"""

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

__all__ = ["NOISE", "quiet_stderr", "quiet_tensorflow"]

NOISE = re.compile(r"^(?:[IWE]\d{4} [\d:. ]+\s+\d+ \S+:\d+\]|WARNING: All log messages before "
                   r"absl::InitializeLog|To enable the following instructions:|INFO: Created "
                   r"TensorFlow Lite XNNPACK delegate for CPU\.)")


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Runs the block with C-level stderr captured; passes on what is not known noise."""
    with _stderr_captured():
        yield


@contextlib.contextmanager
def _stderr_captured():
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield capture
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode("utf-8", "replace").splitlines():
                if not NOISE.match(line):
                    print(line, file=sys.stderr)


def quiet_tensorflow() -> None:
    """Imports TensorFlow (and lets it probe its devices) without its C++ start-up lines."""
    if "tensorflow" in sys.modules and getattr(quiet_tensorflow, "done", False):
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _stderr_captured():
        import tensorflow as tf

        tf.config.list_physical_devices()
        import keras  # noqa: F401
    quiet_tensorflow.done = True
