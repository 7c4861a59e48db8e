"""`keras-lstm predict --input` over generated files: lines/s and peak RSS.

Usage: python bench/predict_file.py [--run RUN] [--lines 100000,1000000] [--runtime onnx]

A small sentiment model is trained on the embedded reviews (the "fast"
preset) and exported to ONNX in a temporary folder, unless --run names a run
folder with an ONNX export. For each size, a plain-text file of that many
lines (reviews joined at random, 1-3 per line, seeded) is written, then
`keras-lstm predict RUN --input FILE --output OUT.jsonl` runs in a fresh
process that reports its peak RSS (ru_maxrss). Prints a Markdown table.
"""

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from serve_http import train  # (bench/ is on the path when this script runs)

ROOT = Path(__file__).resolve().parents[1]
RUN_WITH_PEAK = """
import resource, sys
from keras_lstm.app.cli import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def generate(path, lines, texts, seed=0):
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(lines):
            f.write(" ".join(rng.choice(texts) for _ in range(rng.randint(1, 3)))
                    .replace("\n", " ") + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a sentiment run folder with an ONNX export "
                                      "(default: train one)")
    parser.add_argument("--lines", default="100000,1000000")
    parser.add_argument("--runtime", default="onnx")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from keras_lstm.data.default_reviews import load_default_reviews

    texts = [t for t in load_default_reviews()[0] if t.strip()][:2000]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        run = Path(args.run) if args.run else train(folder, formats="onnx")
        for lines in (int(n) for n in args.lines.split(",")):
            source, out = Path(folder) / f"{lines}.txt", Path(folder) / f"{lines}.jsonl"
            generate(source, lines, texts)
            start = time.perf_counter()
            result = subprocess.run(
                [sys.executable, "-c", RUN_WITH_PEAK, "predict", str(run), "--runtime",
                 args.runtime, "--input", str(source), "--output", str(out), "--batch-size",
                 str(args.batch_size)], cwd=ROOT, capture_output=True, text=True, check=True)
            seconds = time.perf_counter() - start
            peak = int(result.stderr.split()[-1]) / 1024
            with open(out, encoding="utf-8") as f:
                written = sum(1 for _ in f)
            assert written == lines, (written, lines)
            rows.append((lines, source.stat().st_size / 2**20, out.stat().st_size / 2**20,
                         seconds, lines / seconds, peak))
            source.unlink()
            out.unlink()
    print(f"\n`keras-lstm predict RUN --runtime {args.runtime} --input FILE.txt --output "
          f"OUT.jsonl --batch-size {args.batch_size}`, {os.cpu_count()} CPUs; "
          "wall time includes starting the process and loading the model.\n")
    print("| lines | input MiB | output MiB | seconds | lines/s | peak RSS MiB |")
    print("|---|---|---|---|---|---|")
    for lines, size_in, size_out, seconds, rate, peak in rows:
        print(f"| {lines:,} | {size_in:.1f} | {size_out:.1f} | {seconds:.1f} | {rate:,.0f} | "
              f"{peak:.0f} |")
    if len(rows) > 1:
        print(f"\nPeak RSS of the largest file / the smallest: {rows[-1][-1] / rows[0][-1]:.3f}")


if __name__ == "__main__":
    main()
