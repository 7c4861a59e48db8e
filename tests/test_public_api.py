"""Every module says what is public (`__all__`, of names it has, sorted in the runtimes), and
layers 0-2 (`keras_lstm.core`, `lstm_text`, `keras_lstm.runtimes`) type-hint every public
function and method."""

import importlib
import inspect

import pytest

from tests.test_layers import modules

HINTED = ("keras_lstm.core", "lstm_text", "keras_lstm.runtimes")


def under(prefixes):
    return sorted(name for name in modules()
                  if any(name == p or name.startswith(p + ".") for p in prefixes))


# Every module but `python -m keras_lstm`'s door and the package root (which lazily loads its
# subpackages by name).
WITH_ALL = [name for name in modules() if name not in ("keras_lstm.__main__",)]


def public_callables(module):
    """`(qualified name, function)` of the functions and methods `module` defines publicly."""
    for name in module.__all__:
        value = getattr(module, name)
        if getattr(value, "__module__", None) != module.__name__:
            continue  # re-exported: checked where it is defined
        if inspect.isfunction(value):
            yield name, value, False
        elif inspect.isclass(value):
            for attribute, member in vars(value).items():
                if attribute.startswith("_") and attribute != "__init__":
                    continue
                bound = not isinstance(member, staticmethod)
                if isinstance(member, (classmethod, staticmethod)):
                    member = member.__func__
                elif isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member):
                    yield f"{name}.{attribute}", member, bound


def missing_hints(module):
    """`name(parameter)` and `name -> ?` for each public parameter or return without a hint."""
    missing = []
    for qualified, function, bound in public_callables(module):
        signature = inspect.signature(function)
        for parameter in list(signature.parameters.values())[1 if bound else 0:]:
            if parameter.annotation is inspect.Parameter.empty:
                missing.append(f"{qualified}({parameter.name})")
        if (signature.return_annotation is inspect.Signature.empty
                and not qualified.endswith("__init__")):
            missing.append(f"{qualified} -> ?")
    return missing


@pytest.mark.parametrize("name", sorted(WITH_ALL))
def test_every_module_has_an_all_of_names_it_has(name):
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), list), f"{name} has no __all__"
    assert [n for n in module.__all__ if not hasattr(module, n)] == []
    if name.startswith("keras_lstm.runtimes"):
        assert sorted(module.__all__) == module.__all__, "keep __all__ sorted"


@pytest.mark.parametrize("name", under(HINTED))
def test_every_public_function_and_method_has_type_hints(name):
    missing = missing_hints(importlib.import_module(name))
    assert missing == [], f"{name}: no type hints on {', '.join(missing)}"


def test_a_missing_hint_is_found():
    module = type(importlib)("fake")

    class Thing:
        def method(self, x: int):
            return x

        @classmethod
        def build(cls, y) -> "Thing":
            return cls()

    def function(a: int, b) -> int:
        return a

    Thing.__module__ = function.__module__ = "fake"
    module.Thing, module.function, module.__all__ = Thing, function, ["Thing", "function"]
    assert missing_hints(module) == ["Thing.method -> ?", "Thing.build(y)", "function(b)"]
