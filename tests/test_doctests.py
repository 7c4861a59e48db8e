"""The docstring examples of layers 0-2 (core, lstm_text, runtimes) run, and give what they show.

Every module of the three TensorFlow-free layers is imported and its examples
run with `doctest`; a wrong example fails the test with doctest's report
(expected and got). Examples that need a trained run (`keras-lstm demo`)
carry `# doctest: +SKIP`.
"""

import doctest
import importlib

import pytest

from tests.test_layers import LAYERS, TENSORFLOW_FREE, layer_of, modules

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
DOCTESTED = sorted(name for name in modules()
                   if (layer_of(name) or (None, None))[1] in TENSORFLOW_FREE
                   and name != "keras_lstm")  # the package's __init__ is the front door, not layer 0


def run_examples(module):
    """`(attempted, failures report)` of the examples in `module`'s docstrings."""
    finder = doctest.DocTestFinder(exclude_empty=True)
    report = []
    runner = doctest.DocTestRunner(optionflags=FLAGS, verbose=False)
    attempted = 0
    for test in finder.find(module, module.__name__):
        result = runner.run(test, out=report.append)
        attempted += result.attempted
    return attempted, runner.failures, "".join(report)


def test_the_three_layers_are_searched():
    layers = {layer_of(name)[1] for name in DOCTESTED}
    assert layers == set(TENSORFLOW_FREE)
    assert {"keras_lstm.core.files", "lstm_text.preprocessor",
            "lstm_text.contract.encoder", "keras_lstm.runtimes"} <= set(DOCTESTED)
    assert [name for name, _ in LAYERS[:3]] == list(TENSORFLOW_FREE)


@pytest.mark.parametrize("name", DOCTESTED)
def test_docstring_examples_run(name):
    attempted, failures, report = run_examples(importlib.import_module(name))
    assert failures == 0, f"{failures} of {attempted} examples of {name} failed:\n{report}"


def test_there_are_examples_to_run():
    """The examples are found at all (a finder that sees none would pass every module)."""
    counts = {name: run_examples(importlib.import_module(name))[0]
              for name in ("keras_lstm.core.files", "lstm_text.vocabulary",
                           "lstm_text.contract.encoder", "lstm_text.preprocessor")}
    assert all(count >= 3 for count in counts.values()), counts


def test_a_wrong_example_fails():
    """The runner reports a docstring whose output differs from what it shows."""
    module = type(importlib)("fake")
    module.__doc__ = ">>> 1 + 1\n3\n"
    attempted, failures, report = run_examples(module)
    assert (attempted, failures) == (1, 1)
    assert "Expected:\n    3\nGot:\n    2" in report
