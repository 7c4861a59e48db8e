"""The runtimes layer says what is public: `__all__` in every module, names that exist,
and type hints on every public function and method (their arguments and return)."""

import importlib
import inspect
import pkgutil

import pytest

import keras_lstm.runtimes

MODULES = ["keras_lstm.runtimes", *(f"keras_lstm.runtimes.{info.name}" for info in
                                    pkgutil.iter_modules(keras_lstm.runtimes.__path__))]


def public_callables(module):
    """`(qualified name, function)` of the functions and methods `module` defines publicly."""
    for name in module.__all__:
        value = getattr(module, name)
        if getattr(value, "__module__", None) != module.__name__:
            continue  # re-exported: checked where it is defined
        if inspect.isfunction(value):
            yield name, value
        elif inspect.isclass(value):
            for attribute, member in vars(value).items():
                if attribute.startswith("_") and attribute != "__init__":
                    continue
                if isinstance(member, property):
                    member = member.fget
                if inspect.isfunction(member):
                    yield f"{name}.{attribute}", member


@pytest.mark.parametrize("name", MODULES)
def test_every_module_has_an_all_of_names_it_has(name):
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), list), f"{name} has no __all__"
    assert [n for n in module.__all__ if not hasattr(module, n)] == []
    assert sorted(module.__all__) == module.__all__, "keep __all__ sorted"


@pytest.mark.parametrize("name", MODULES)
def test_every_public_function_and_method_has_type_hints(name):
    module = importlib.import_module(name)
    missing = []
    for qualified, function in public_callables(module):
        signature = inspect.signature(function)
        for parameter in list(signature.parameters.values())[1 if "." in qualified else 0:]:
            if parameter.annotation is inspect.Parameter.empty:
                missing.append(f"{qualified}({parameter.name})")
        if (signature.return_annotation is inspect.Signature.empty
                and not qualified.endswith("__init__")):
            missing.append(f"{qualified} -> ?")
    assert missing == [], f"{name}: no type hints on {', '.join(missing)}"
