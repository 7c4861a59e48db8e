"""The notebooks are committed executed, and notebooks/render.py is what executes them.

The first test reads the committed files only (no kernel); nbmake executes the notebooks
in fast mode elsewhere in the suite and never writes them back.
"""

import shutil
import subprocess
import sys

import nbformat
import pytest
from matplotlib import font_manager
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tests.helpers import REPO

# Trains, exports or runs a subprocess per test: CI runs it; `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

NOTEBOOKS = REPO / "notebooks"
RENDER = NOTEBOOKS / "render.py"
# What a reader should see on the code host without running anything.
IMAGES = {
    "01_lstm_gates": "the gates heatmap",
    "02_sentiment": "the training curves and the confusion matrix",
    "03_translation": "the attention map",
    "04_export_and_serve": "the latency and size bars",
    "05_why_lstm": "accuracy and gradient norm against distance",
}
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def code_cells(notebook):
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def mime_types(notebook):
    return {key for cell in code_cells(notebook) for output in cell.outputs
            for key in output.get("data", {})}


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_committed_notebooks_carry_their_outputs(path):
    notebook = nbformat.read(path, as_version=4)
    counts = [cell.execution_count for cell in code_cells(notebook)]
    # 1, 2, 3, ... : one kernel ran every cell once, top to bottom (python notebooks/render.py).
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name} is not rendered top to bottom (execution counts {counts}); "
        f"run python notebooks/render.py --only {path.stem}")
    errors = [output for cell in code_cells(notebook) for output in cell.outputs
              if output.output_type == "error"]
    assert not errors, f"{path.name} was committed with an error: {errors[0].get('ename')}"
    if path.stem in IMAGES:
        assert "image/png" in mime_types(notebook), f"{path.name} holds no image ({IMAGES[path.stem]})"
    assert not any("execution" in cell.metadata for cell in notebook.cells), (
        f"{path.name} keeps execution timestamps: every render would change them")


def test_every_notebook_has_its_image_listed():
    assert set(IMAGES) == {path.stem for path in NOTEBOOKS.glob("*.ipynb")}


def write(folder, name, *cells):
    path = folder / f"{name}.ipynb"
    nbformat.write(new_notebook(cells=list(cells), metadata={"kernelspec": KERNELSPEC}), path)
    return path


def render(folder, *args):
    return subprocess.run([sys.executable, str(RENDER), "--folder", str(folder), *args],
                          capture_output=True, text=True, timeout=600)


def test_render_writes_outputs_and_leaves_a_failed_notebook_alone(tmp_path):
    # One kernel per notebook: two tiny ones, no training.
    good = write(tmp_path, "a_plots",
                 new_markdown_cell("# A plot"),
                 new_code_cell("import os\nprint(os.getcwd(), os.environ.get('KERAS_LSTM_FAST'))"),
                 new_code_cell("import matplotlib.pyplot as plt\n_ = plt.plot([1, 3, 2])"),
                 # A TensorFlow C++ log record reaches the notebook through file descriptor 2.
                 new_code_cell("import os, sys, time\n"
                               "os.write(2, b'I0000 00:00:1796305965.748173   17390 cudart_stub.cc:31] "
                               "Could not find cuda drivers\\n')\n"
                               "time.sleep(0.5)\n"
                               "print('a warning for the reader', file=sys.stderr)"))
    bad = write(tmp_path, "b_fails", new_code_cell("print('before')"),
                new_code_cell("raise ValueError('on purpose')"))
    before = bad.read_bytes()
    result = render(tmp_path, "--fast")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "b_fails.ipynb: ValueError: on purpose" in result.stdout
    assert "failed, left as they were: b_fails.ipynb" in result.stderr
    assert bad.read_bytes() == before, "a failed notebook was written"
    notebook = nbformat.read(good, as_version=4)
    cells = code_cells(notebook)
    assert [cell.execution_count for cell in cells] == [1, 2, 3]
    # Its own folder is the working directory; --fast is what the notebooks read.
    assert cells[0].outputs[0].text == f"{tmp_path} 1\n"
    assert "image/png" in mime_types(notebook), "the figure was not embedded (inline backend)"
    stderr = "".join(o.text for o in cells[2].outputs if o.get("name") == "stderr")
    assert stderr == "a warning for the reader\n", "the native log line was kept, or more dropped"
    assert notebook.metadata == {"kernelspec": KERNELSPEC}, "volatile metadata was kept"
    assert not list(tmp_path.glob(".*.tmp")), "a temporary file was left behind"


def test_render_drops_the_fast_flag_and_wants_the_cjk_font(tmp_path):
    path = write(tmp_path, "c_env", new_code_cell(
        "import os\nprint(repr(os.environ.get('KERAS_LSTM_FAST')))"))
    before = path.read_bytes()
    result = render(tmp_path, "--only", "c")  # the full presets
    try:
        font_manager.findfont("Noto Sans CJK SC", fallback_to_default=False)
    except ValueError:  # the committed images would show boxes for the Chinese tokens
        assert result.returncode == 2 and "apt-get install fonts-noto-cjk" in result.stderr
        assert path.read_bytes() == before
        return
    assert result.returncode == 0, result.stdout + result.stderr
    # The test session sets KERAS_LSTM_FAST=1 (conftest.py); the full render must not pass it on.
    assert code_cells(nbformat.read(path, as_version=4))[0].outputs[0].text == "None\n"


def test_render_names_a_notebook_it_cannot_find(tmp_path):
    write(tmp_path, "c_empty")
    result = render(tmp_path, "--only", "nope", "--fast")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == f"render.py: no notebook in {tmp_path} matches 'nope'\n"


@pytest.mark.slow
def test_render_fast_executes_a_real_notebook_into_a_copy(tmp_path):
    shutil.copy(NOTEBOOKS / "01_lstm_gates.ipynb", tmp_path)
    source = nbformat.read(tmp_path / "01_lstm_gates.ipynb", as_version=4)
    for cell in code_cells(source):  # start from a notebook without outputs
        cell.outputs, cell.execution_count = [], None
    nbformat.write(source, tmp_path / "01_lstm_gates.ipynb")
    result = render(tmp_path, "--fast", "--only", "01")  # --fast: the tests' quick preset
    assert result.returncode == 0, result.stdout + result.stderr
    rendered = nbformat.read(tmp_path / "01_lstm_gates.ipynb", as_version=4)
    assert [c.source for c in rendered.cells] == [c.source for c in source.cells]
    assert all(cell.execution_count for cell in code_cells(rendered))
    assert "image/png" in mime_types(rendered), "no gates heatmap in the rendered copy"
