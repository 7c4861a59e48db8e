"""Executes the notebooks top to bottom and writes their outputs back, images included.

The notebooks are committed executed, so a reader on a code host sees the gate heatmaps,
the confusion matrix, the attention map and the plots without running anything. The
tests execute them in fast mode through nbmake, which never writes back; this script is
the one place that does.

    python notebooks/render.py                 # every notebook, with the full presets
    python notebooks/render.py --only 02       # one notebook (its name, or a prefix of it)
    python notebooks/render.py --fast          # KERAS_LSTM_FAST=1: quick, to try the script

Each notebook runs in a fresh kernel with its own folder as working directory, under a
deadline for the whole notebook (`--timeout`). A notebook that fails, times out, or whose
source changed on disk while it ran is left exactly as it was, and the script exits 1
naming it.
"""

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

HERE = Path(__file__).resolve().parent
# Inline figures become image/png outputs, whatever backend the caller's shell names.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
# The font the notebooks ask for: without it the Chinese tokens on the axes are empty boxes.
CJK_FONT = "Noto Sans CJK SC"
# TensorFlow's C++ log records, which reach the notebook through the kernel's stderr file
# descriptor ("I0000 00:00:1796305965.748173   17390 cudart_stub.cc:31] ..."), the line absl
# prints before them, and the second line of the CPU-feature record. Some are written before
# TF_CPP_MIN_LOG_LEVEL is read, and each carries a timestamp.
NATIVE_LOG = re.compile(
    r"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] .*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .*, in other operations, rebuild TensorFlow .*)(?:\n|\Z)",
    re.MULTILINE)


def notebook_paths(folder, only=None):
    """The notebooks of `folder` in name order, or those `only` names.

    Args:
        folder: the folder holding the `.ipynb` files.
        only: `None` for all, else a file name, a stem ("02_sentiment") or a prefix ("02").

    Returns:
        A list of paths; empty when `only` matches nothing.
    """
    paths = sorted(Path(folder).glob("*.ipynb"))
    if only is None:
        return paths
    name = only.removesuffix(".ipynb")
    return [p for p in paths if p.stem == name or p.stem.startswith(name)]


def _sources(notebook):
    return [(cell.cell_type, cell.source) for cell in notebook.cells]


def _strip_volatile(notebook, metadata):
    """Keeps outputs, drops what changes on every run without changing what a reader sees."""
    notebook.metadata = metadata  # nbclient adds language_info (the Python patch version)
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)  # iopub timestamps, should a config turn them on
        if cell.cell_type != "code":
            continue
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stderr":
                output.text = NATIVE_LOG.sub("", output.text)
        cell.outputs = [o for o in cell.outputs if o.output_type != "stream" or o.text]


def render(path, timeout=3600):
    """Executes one notebook in its folder and writes it back with its outputs.

    Args:
        path: the `.ipynb` file. It is read here, so edits made up to this call are rendered.
        timeout: seconds for the whole notebook; a cell still running then is interrupted.

    Returns:
        Seconds the execution took.

    Raises:
        RuntimeError: a cell failed, the deadline passed, the kernel died, or the file's
            source changed while it ran. The file is then left untouched.
    """
    path = Path(path)
    source = nbformat.read(path, as_version=4)
    metadata = source.metadata
    notebook = nbformat.from_dict(source)  # executed in place; `source` stays as read
    start = time.monotonic()
    deadline = start + timeout
    client = NotebookClient(
        notebook, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
        # nbclient's timeout is per cell; the remaining time makes it one for the notebook.
        timeout_func=lambda cell: max(1, int(deadline - time.monotonic())))
    try:
        client.execute()
    except CellTimeoutError:
        raise RuntimeError(f"{path.name}: not done after {timeout} s (--timeout)") from None
    except CellExecutionError as error:
        raise RuntimeError(f"{path.name}: {error.ename}: {error.evalue}".rstrip(": ")) from None
    except DeadKernelError as error:
        raise RuntimeError(f"{path.name}: the kernel died ({error})") from None
    elapsed = time.monotonic() - start
    # Others edit the notebooks while one renders: writing back would undo their edit.
    if _sources(nbformat.read(path, as_version=4)) != _sources(source):
        raise RuntimeError(f"{path.name}: its source changed on disk while it ran; render it again")
    _strip_volatile(notebook, metadata)
    from keras_lstm.core.files import atomic_write_text

    atomic_write_text(path, nbformat.writes(notebook) + "\n")
    return elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", metavar="NAME", help="one notebook: its name or a prefix (02)")
    parser.add_argument("--fast", action="store_true",
                        help="run with KERAS_LSTM_FAST=1 (the tests' quick presets)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per notebook")
    parser.add_argument("--folder", type=Path, default=HERE,
                        help="the folder of the notebooks (default: this script's)")
    args = parser.parse_args(argv)
    paths = notebook_paths(args.folder, args.only)
    if not paths:
        print(f"render.py: no notebook in {args.folder} matches {args.only!r}", file=sys.stderr)
        return 2
    # The kernels inherit this environment; each notebook reads KERAS_LSTM_FAST itself.
    os.environ.pop("KERAS_LSTM_FAST", None)
    if args.fast:
        os.environ["KERAS_LSTM_FAST"] = "1"
    else:  # the committed images: refuse to draw boxes for the Chinese tokens
        from matplotlib import font_manager

        try:
            font_manager.findfont(CJK_FONT, fallback_to_default=False)
        except ValueError:
            print(f"render.py: matplotlib finds no {CJK_FONT!r} font, so Chinese tokens would "
                  "render as boxes: install it (Debian: apt-get install fonts-noto-cjk) "
                  "or use --fast", file=sys.stderr)
            return 2
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    # TensorFlow's C++ log lines (CUDA probes, timestamps) carry nothing for a reader; the
    # test session hides them the same way (conftest.py).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    failed = []
    for path in paths:
        print(f"{path.name}: running", flush=True)
        try:
            elapsed = render(path, args.timeout)
        except RuntimeError as error:
            failed.append(path.name)
            print(f"FAILED {error}", flush=True)
        else:
            print(f"{path.name}: rendered in {elapsed:.0f} s", flush=True)
    if failed:
        print("render.py: failed, left as they were: " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
