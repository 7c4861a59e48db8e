"""The layers of the code base, and the test that keeps imports running one way (down).

Each module belongs to one layer (the longest prefix in `LAYERS` names it) and
may import only from its own layer and those below. Every import counts:
module level and function level, `import a.b` and `from a import b`,
relative ones too. docs/design.md draws the same table.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("keras_lstm", "export", "lstm_text")

# (layer, module prefixes), bottom first. lstm_text and export are whole packages.
LAYERS = (
    ("0 core", ("keras_lstm", "keras_lstm.core")),
    ("1 text", ("lstm_text",)),
    ("2 runtimes", ("keras_lstm.runtimes",)),
    ("3 tensorflow", ("keras_lstm.layers", "keras_lstm.models", "keras_lstm.data",
                      "keras_lstm.text", "keras_lstm.tasks", "keras_lstm.training",
                      "keras_lstm.distributed", "keras_lstm.evaluation", "keras_lstm.baseline",
                      "keras_lstm.inference", "keras_lstm.runs", "keras_lstm.presets")),
    ("4 export", ("export",)),
    ("5 app", ("keras_lstm.app", "keras_lstm.__main__")),
)
TENSORFLOW_FREE = ("0 core", "1 text", "2 runtimes")


def modules(root=ROOT):
    """`{dotted name: path}` of every module of the three packages under `root`."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def layer_of(module):
    """`(index, name)` of the layer whose longest prefix matches `module`, or None.

    "keras_lstm" names the package's `__init__` only: its other modules must
    each be placed, so a new one cannot land in the core unseen.
    """
    best = None
    for index, (name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or (module.startswith(prefix + ".") and prefix != "keras_lstm"):
                if best is None or len(prefix) > best[2]:
                    best = (index, name, len(prefix))
    return best[:2] if best else None


def imports(module, path, known):
    """`(line, imported module)` of every import in `path` that names one of `known`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            # `from a import b` imports the module a.b when there is one, else a name of a.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                     for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.append((node.lineno, name))
    return found


def upward_imports(root=ROOT):
    """One line per import of a layer above the importing module's, and per unplaced module."""
    known = modules(root)
    problems = []
    for module, path in known.items():
        mine = layer_of(module)
        if mine is None:
            problems.append(f"{path.relative_to(root)}: module {module} is in no layer")
            continue
        for line, target in imports(module, path, known):
            theirs = layer_of(target)
            if theirs is not None and theirs[0] > mine[0]:
                problems.append(f"{path.relative_to(root)}:{line}: {module} (layer {mine[1]}) "
                                f"imports {target} (layer {theirs[1]})")
    return problems


def test_no_module_imports_from_a_layer_above_its_own():
    assert upward_imports() == []


def cycles(graph):
    """Each import loop of `graph` (`{module: {imported modules}}`) as "a -> b -> a"."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                found.append(" -> ".join(stack[stack.index(child):] + [child]))
            elif child not in state:
                visit(child, stack + [child])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_no_import_cycle_anywhere():
    # Within a layer too: modules of one layer may import each other, but never round a loop.
    known = modules()
    graph = {module: {target for _, target in imports(module, path, known)
                      if not module.startswith(target + ".")}  # a package's own __init__
             for module, path in known.items()}
    assert cycles(graph) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a -> b -> c -> a"]


def test_the_check_sees_function_level_and_relative_imports(tmp_path):
    # A copy of the layout where low layers reach up, in every form the check must catch.
    for package in PACKAGES:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "keras_lstm" / "core").mkdir()
    (tmp_path / "keras_lstm" / "core" / "__init__.py").write_text("")
    (tmp_path / "keras_lstm" / "app").mkdir()
    (tmp_path / "keras_lstm" / "app" / "__init__.py").write_text("from .. import core\n")
    (tmp_path / "keras_lstm" / "app" / "cli.py").write_text("")
    (tmp_path / "keras_lstm" / "core" / "errors.py").write_text(
        "def f():\n    from keras_lstm.app import cli\n")
    (tmp_path / "lstm_text" / "rules.py").write_text("import export\n")
    (tmp_path / "keras_lstm" / "core" / "files.py").write_text("from ..app.cli import main\n")
    (tmp_path / "keras_lstm" / "stray.py").write_text("")
    problems = upward_imports(tmp_path)
    assert problems == [
        "keras_lstm/core/errors.py:2: keras_lstm.core.errors (layer 0 core) imports "
        "keras_lstm.app.cli (layer 5 app)",
        "keras_lstm/core/files.py:1: keras_lstm.core.files (layer 0 core) imports "
        "keras_lstm.app.cli (layer 5 app)",
        "keras_lstm/stray.py: module keras_lstm.stray is in no layer",
        "lstm_text/rules.py:1: lstm_text.rules (layer 1 text) imports export (layer 4 export)",
    ]


def test_the_tensorflow_free_layers_import_without_tensorflow():
    # Every module of layers 0-2, imported in a fresh interpreter: none may pull in TensorFlow,
    # Keras or tf2onnx (the SavedModel runtime loads TensorFlow only when it is used).
    names = sorted(module for module in modules()
                   if layer_of(module)[1] in TENSORFLOW_FREE)
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "print(sorted(m for m in ('tensorflow', 'keras', 'tf2onnx') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
    assert len(names) > 20


@pytest.mark.parametrize("module", ["keras_lstm.runtimes", "keras_lstm.core.files",
                                    "lstm_text.decoding"])
def test_the_layers_are_read_from_the_code(module):
    # The table places today's modules where docs/design.md says they are.
    assert module in modules()
    assert layer_of(module)[1] in TENSORFLOW_FREE


def test_no_folder_imports_round_a_loop():
    # The same walk by folder: a folder's modules never need, through other folders, a module
    # of their own folder back. keras_lstm/__main__.py is the application's `python -m` door
    # (Python wants it at the package root), so it counts as keras_lstm/app's.
    known = modules()

    def folder(module):
        if module == "keras_lstm.__main__":
            return "keras_lstm/app"
        return str(known[module].parent.relative_to(ROOT))

    graph = {}
    for module, path in known.items():
        for _, target in imports(module, path, known):
            if folder(module) != folder(target):
                graph.setdefault(folder(module), set()).add(folder(target))
    assert cycles(graph) == []
    assert len({folder(module) for module in known}) >= 10
