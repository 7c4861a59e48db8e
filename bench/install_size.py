"""Disk size of the TensorFlow-free install (`pip install keras-lstm`) against the full one.

Usage: python bench/install_size.py [--venv DIR]

The TensorFlow-free install is built for real: a wheel of this checkout
(`pip wheel --no-deps`), installed with its declared dependencies only into a
fresh `python -m venv` (pip may download from the package index; its cache is
~/.cache/pip), then measured with `du`. The full install (`keras-lstm[train]`:
TensorFlow, Keras, tensorflow-text, tf2onnx, ...) would take a second venv of
several GB; it is measured instead in this environment, where
`requirements.txt` installed it: the sum of the files each distribution of
the requirement closure of `keras-lstm[train]` installed (from their RECORD),
plus an empty venv's size (pip, setuptools, the interpreter's links) so that
both sides count the same overhead. The same closure sum of the default
install is printed beside it, as a check that the two methods agree. Prints a
Markdown table and the ratio against the issue's goal (8× smaller, ≤ 400 MB).
"""

import argparse
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "keras_lstm", "export", "lstm_text")
GOAL_MB, GOAL_RATIO = 400, 8
MB = 1e6


def tree_bytes(path):
    """Bytes `du -s --block-size=1 PATH` reports: allocated blocks, each file once."""
    total, seen = 0, set()
    for folder, _, files in os.walk(path):
        for name in (".", *files):
            stat = os.lstat(os.path.join(folder, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total


def build_wheel(destination):
    """A wheel of this checkout, built from a copy so the shared tree gets no build/ folder."""
    source = Path(destination) / "source"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            source.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    wheels = Path(destination) / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                    "--wheel-dir", str(wheels), str(source)], check=True)
    return next(wheels.glob("keras_lstm-*.whl"))


def make_venv(venv, wheel=None):
    """A fresh venv at `venv` with `wheel` (and its declared dependencies only) installed."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if wheel is not None:
        subprocess.run([str(Path(venv) / "bin" / "python"), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", str(wheel)], check=True)
    return Path(venv)


def declared(extra=None):
    """pyproject.toml's dependencies, plus those of `extra`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    requirements = list(project["dependencies"])
    if extra:
        requirements += project["optional-dependencies"][extra]
    return requirements


def _key(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(requirements):
    """The installed distributions `requirements` pull in, transitively (by normalized name)."""
    found, pending = {}, [(Requirement(text), ()) for text in requirements]
    while pending:
        requirement, extras = pending.pop()
        if requirement.marker and not any(
                requirement.marker.evaluate({"extra": extra}) for extra in extras or ("",)):
            continue
        key = _key(requirement.name)
        try:
            distribution = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional dependency this environment lacks: not installed there either
        wanted = set(requirement.extras)
        if key in found and wanted <= found[key][1]:
            continue
        seen = found.get(key, (distribution, set()))[1] | wanted
        found[key] = (distribution, seen)
        pending += [(Requirement(text), tuple(seen)) for text in distribution.requires or ()]
    return {key: distribution for key, (distribution, _) in found.items()}


def distributions_bytes(distributions):
    """Bytes the distributions' installed files take (each file once, allocated blocks)."""
    total, seen = 0, set()
    for distribution in distributions.values():
        for file in distribution.files or ():
            path = Path(file.locate())
            if path.is_file() and path not in seen:
                seen.add(path)
                total += path.lstat().st_blocks * 512
    return total


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", help="build the TensorFlow-free venv here and keep it "
                                       "(default: in a temporary folder)")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        venv = Path(args.venv or Path(scratch) / "venv")
        wheel = build_wheel(scratch)
        free = tree_bytes(make_venv(venv, wheel))
        empty = tree_bytes(make_venv(Path(scratch) / "empty"))
        free_names = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list",
                                     "--format=freeze", "--disable-pip-version-check"],
                                    capture_output=True, text=True, check=True).stdout.split()
    # The project itself (editable here) is left out of both closures: a few hundred KB.
    base = {k: d for k, d in closure(declared()).items() if k != "keras-lstm"}
    full = {k: d for k, d in closure(declared("train")).items() if k != "keras-lstm"}
    base_bytes, full_bytes = distributions_bytes(base), distributions_bytes(full)
    print("| install | distributions | MB | measured |")
    print("|---|---|---|---|")
    print(f"| `pip install keras-lstm` (TensorFlow-free) | {len(free_names)} | {free / MB:,.0f} | "
          f"`du` of a fresh venv |")
    print(f"| the same, its closure in this environment + an empty venv | {len(base)} | "
          f"{(base_bytes + empty) / MB:,.0f} | RECORD files + `du` of an empty venv "
          f"({empty / MB:.0f} MB) |")
    print(f"| `pip install 'keras-lstm[train]'` (full) | {len(full)} | "
          f"{(full_bytes + empty) / MB:,.0f} | RECORD files + `du` of an empty venv |")
    ratio = (full_bytes + empty) / free
    print(f"\nfull / TensorFlow-free: {ratio:.1f}x against the fresh venv, "
          f"{full_bytes / base_bytes:.1f}x closure against closure (goal ≥ {GOAL_RATIO}x); "
          f"TensorFlow-free {free / MB:.0f} MB (goal ≤ {GOAL_MB} MB)")
    heaviest = sorted(full.items(), key=lambda item: -distributions_bytes({0: item[1]}))[:8]
    print("\nlargest in the full install: " + ", ".join(
        f"{key} {distributions_bytes({0: d}) / MB:.0f} MB" for key, d in heaviest))
    return 0 if free <= GOAL_MB * MB and ratio >= GOAL_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
