"""Start-up time of the command line: `--help` and TF-free `predict` against bare Python.

Usage: python bench/cli_startup.py [--export EXPORT] [--runs 7] [--text TEXT]

Times, as fresh processes of this interpreter (`sys.executable`, no shell or
pyenv shim in between), `python -c pass`, `python -c "import tensorflow"`,
`python -m keras_lstm --help`, and `python -m keras_lstm predict EXPORT TEXT`
with `--runtime onnx` and `--runtime tflite` on a sentiment export. Each round
runs every command once, in forward order on even rounds and in reverse on odd
ones, so that a slow spell of a shared machine falls on all of them; one
untimed round first warms the file cache. Without `--export`, a tiny model is
trained and exported first (preset "fast", 600 reviews, 1 epoch; ONNX and
float32 TFLite), in a temporary folder.

Then each keras-lstm command runs once more with `-X importtime`, and the
modules it imported are checked: `--help` and the ONNX/TFLite `predict` must
import neither TensorFlow nor Keras (exit status 1 if one does). Prints a
Markdown table of medians and 90th percentiles, the time above bare Python and
the ratio to `import tensorflow`, then the import check with each command's
largest imports.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
DEFAULT_TEXT = "质量很好，物流也快，非常满意！"
# Top-level packages a TensorFlow-free command must not import.
HEAVY = ("tensorflow", "keras", "tf_keras")


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, default=None,
                        help="a sentiment export folder with model.onnx and "
                             "model_float32.tflite (default: train and export a tiny one)")
    parser.add_argument("--runs", type=int, default=7, help="timed rounds (default 7)")
    parser.add_argument("--text", default=DEFAULT_TEXT, help="the text predict labels")
    return parser


def commands(export, text):
    """`(label, argv, tensorflow_free)` of every command timed."""
    predict = ["-m", "keras_lstm", "predict", str(export)]
    return [
        ("python -c pass", ["-c", "pass"], None),
        ('python -c "import tensorflow"', ["-c", "import tensorflow"], None),
        ("keras-lstm --help", ["-m", "keras_lstm", "--help"], True),
        ("keras-lstm predict --runtime onnx", [*predict, "--runtime", "onnx", text], True),
        ("keras-lstm predict --runtime tflite", [*predict, "--runtime", "tflite", text], True),
    ]


def run(argv, env, extra=()):
    """Runs `python *extra *argv` from the repository root; its stderr, or SystemExit on failure."""
    completed = subprocess.run([PYTHON, *extra, *argv], cwd=ROOT, env=env, text=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if completed.returncode != 0:
        raise SystemExit(f"python {' '.join(argv)}: exit status {completed.returncode}\n"
                         f"{completed.stderr[-2000:]}")
    return completed.stderr


def make_export(folder, env):
    """A tiny sentiment run in `folder`/run, exported to ONNX and float32 TFLite."""
    run_dir = Path(folder) / "run"
    start = time.perf_counter()
    run(["-m", "keras_lstm", "train", "sentiment", "--out", str(run_dir), "--preset", "fast",
         "--max-examples", "600", "--epochs", "1", "-q"], env)
    run(["-m", "keras_lstm", "export", str(run_dir), "--formats", "onnx,tflite",
         "--quantize", "float32", "-q"], env)
    print(f"trained and exported {run_dir} in {time.perf_counter() - start:.0f} s", flush=True)
    return run_dir / "export"


def time_commands(table, rounds, env):
    """Seconds of every command, `rounds` times each, alternating the order every round."""
    seconds = {label: [] for label, _, _ in table}
    for round_index in range(-1, rounds):  # round -1 warms the file cache, untimed
        order = table if round_index % 2 == 0 else table[::-1]
        for label, argv, _ in order:
            start = time.perf_counter()
            run(argv, env)
            if round_index >= 0:
                seconds[label].append(time.perf_counter() - start)
    return seconds


def imported_modules(argv, env):
    """`{module: cumulative µs}` of every module `python -X importtime *argv` imports."""
    modules = {}
    for line in run(argv, env, extra=("-X", "importtime")).splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if cumulative.strip().isdigit():
            # Nested imports are indented; a top-level import's name starts right after "| ".
            modules[name.strip()] = (int(cumulative), name.startswith("  "))
    return modules


def main():
    args = build_parser().parse_args()
    if args.runs < 1:
        raise SystemExit("--runs: at least 1")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    with tempfile.TemporaryDirectory() as folder:
        export = args.export or make_export(folder, env)
        if not (Path(export) / "metadata.json").is_file():
            raise SystemExit(f"{export}: not an export folder (no metadata.json)")
        table = commands(export, args.text)
        seconds = time_commands(table, args.runs, env)
        imports = {label: imported_modules(argv, env) for label, argv, free in table if free}

    median = {label: statistics.median(times) for label, times in seconds.items()}
    bare, tensorflow = median[table[0][0]], median[table[1][0]]
    made = "" if args.export else " (trained and exported by this run)"
    print(f"\n{PYTHON}, {args.runs} rounds (commands alternating in order), "
          f"export {export}{made}\n")
    print("| command | median s | p90 s | above bare Python s | / import tensorflow |")
    print("|---|---|---|---|---|")
    for label, _, _ in table:
        p90 = float(np.percentile(seconds[label], 90))
        print(f"| `{label}` | {median[label]:.2f} | {p90:.2f} | {median[label] - bare:.2f} | "
              f"{median[label] / tensorflow:.2f} |")

    print("\n| command | modules imported | TensorFlow or Keras imported | largest top-level "
          "imports (cumulative ms) |")
    print("|---|---|---|---|")
    failures = []
    for label, modules in imports.items():
        heavy = sorted(name for name in modules if name.split(".")[0] in HEAVY)
        if heavy:
            failures.append(label)
        top = sorted(((us, name) for name, (us, nested) in modules.items() if not nested),
                     reverse=True)[:4]
        largest = ", ".join(f"{name} {us / 1000:.0f}" for us, name in top)
        found = f"yes: {', '.join(heavy[:3])}{' ...' if len(heavy) > 3 else ''}" if heavy else "no"
        print(f"| `{label}` | {len(modules)} | {found} | {largest} |")
    if failures:
        print(f"\nFAILED: {', '.join(failures)} imported TensorFlow or Keras", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
