"""Preparation speed, time to the first training step and peak memory from 100 k to 5 M texts.

Usage: python bench/scale.py [--sizes 100000 1000000 5000000] [--workers-too] [--keep DIR]
                             [--timeout 900] [--shards N] [--seed 0] [--train-args "..."]

For each size, a tweet-like corpus of that many rows is generated (bench/corpus.py,
seeded; cached in --keep DIR, else in a temporary folder), then each phase runs as
its own `python -m keras_lstm` process, one after another:

- `prepare`: `keras-lstm prepare sentiment --data CSV --out PREP --seed 0`; its
  texts/s is the rate the command prints (`prepared N texts in X s (R texts/s)`), the
  table also shows N over the whole process's wall time (start-up included).
- `train (prepared)`: `keras-lstm train sentiment --data PREP --out RUN -v` with
  --train-args (default `--epochs 1 --units 16 --embedding-dim 16`).
- `train --stream`: `keras-lstm train sentiment --data CSV --stream ...`, which
  prepares then trains in one process, so its first step includes the preparation.
- with --workers-too, `worker 0` and `worker 1`: two processes on 127.0.0.1 with
  TF_CONFIG, `--strategy multi-worker`, both on PREP.

A training process is stopped (SIGTERM, SIGKILL 5 s later) as soon as it prints
`first training step after X s` (X counted by the process from its start); the table
shows that X and, in "wall s", the bench's own clock from spawning the process to
reading the line (for `prepare`: to its exit).

Peak resident memory is the `ru_maxrss` that `os.wait4(pid)` returns when the bench
reaps that one process: the kernel's high-water mark of its resident set over its
whole life, right to the end even for a process that exits on its own (polling
VmHWM in /proc/PID/status misses what a process allocates after the last poll;
`getrusage(RUSAGE_CHILDREN)` gives the largest of all children reaped so far, so a
smaller later child does not show). One catch: Linux starts a child's ru_maxrss
from its parent's high-water mark (exec carries the old address space's mark over),
so the bench keeps itself small (the corpus is written by bench/corpus.py in its own
process; the bench imports neither NumPy nor TensorFlow) and prints its own peak; a
child's peak not above it is shown as "<= N". The last VmHWM read before each
process exited is kept as a cross-check in the per-process lines.

Ends with a Markdown table (ratios against the smallest size of the same phase) and
PASS/FAIL lines for the issue's three goals: the largest corpus' peak memory within 1.5x
of the smallest's (the issue: 5 M against 100 k), preparation of the largest corpus at
50 000 texts/s or more (the rate `prepare` prints), the first training step on 1 M
texts within 120 s (each training phase). Exit status 1 when a process
failed or a goal is missed.
"""

import argparse
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from serve_http import free_ports  # (bench/ is on the path when this script runs)

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parent / "corpus.py"
CLI = [sys.executable, "-m", "keras_lstm"]
DEFAULT_SIZES = (100_000, 1_000_000, 5_000_000)
DEFAULT_TRAIN_ARGS = "--epochs 1 --units 16 --embedding-dim 16"
FIRST_STEP = re.compile(r"first training step after ([\d.]+) s")
PREPARED = re.compile(r"prepared ([\d,_]+) texts in ([\d.]+) s \(([\d,_.]+) texts/s\)")
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
# The goals.
MEMORY_RATIO, PREPARE_RATE, FIRST_STEP_SIZE, FIRST_STEP_SECONDS = 1.5, 50_000, 1_000_000, 120.0


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES),
                        help="corpus sizes in texts (default 100000 1000000 5000000)")
    parser.add_argument("--workers-too", action="store_true",
                        help="also train with two multi-worker processes on 127.0.0.1")
    parser.add_argument("--keep", type=Path, default=None,
                        help="folder for the corpora (reused when present), prepared "
                             "folders, runs and logs (default: a temporary folder)")
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="seconds a process may take before it is killed (default 900)")
    parser.add_argument("--shards", type=int, default=None,
                        help="prepare --shards (default: the command's own)")
    parser.add_argument("--seed", type=int, default=0, help="corpus and prepare seed")
    parser.add_argument("--train-args", default=DEFAULT_TRAIN_ARGS,
                        help=f"flags added to every train command (default {DEFAULT_TRAIN_ARGS!r})")
    return parser


@dataclass
class Child:
    """One `keras-lstm` process: its stdout and stderr read line by line as they come, its peak
    memory. Results ("prepared ...") come on stdout, progress ("first training step ...") on
    stderr; both are matched, and stderr is also copied to `log`."""

    name: str
    argv: list
    log: Path
    env: dict = field(default_factory=lambda: dict(os.environ))
    lines: list = field(default_factory=list)  # (seconds since spawn, line)
    matches: dict = field(default_factory=dict)  # pattern -> (seconds since spawn, match)
    returncode: int | None = None
    seconds: float | None = None  # from spawn to reaped
    peak_mb: float | None = None  # ru_maxrss from wait4
    hwm_mb: float | None = None  # the last VmHWM read from /proc before it exited
    stopped: str | None = None  # why the bench stopped it, if it did

    def start(self, patterns):
        self.stderr = open(self.log, "w", encoding="utf-8")  # closed when reaped
        self.started = time.perf_counter()
        self.process = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env=self.env, cwd=ROOT, bufsize=1)
        self.readers = [threading.Thread(target=self._read, args=(stream, patterns, copy),
                                         daemon=True)
                        for stream, copy in ((self.process.stdout, None),
                                             (self.process.stderr, self.stderr))]
        for reader in self.readers:
            reader.start()
        return self

    def _read(self, stream, patterns, copy):
        # Timed here, as each line arrives, not when the main thread gets round to it.
        for line in stream:
            seconds = time.perf_counter() - self.started
            self.lines.append((seconds, line.rstrip("\n")))
            if copy is not None:
                copy.write(line)
                copy.flush()
            for pattern in patterns:
                match = pattern.search(line)
                if match and pattern not in self.matches:
                    self.matches[pattern] = (seconds, match)

    def poll_hwm(self):
        """Reads VmHWM (the high-water mark of the process' own resident set) from /proc."""
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                self.hwm_mb = int(line.split()[1]) / 1024

    def wait4(self, block):
        """Reaps the process if it has exited (or, with `block`, once it does)."""
        pid, status, usage = os.wait4(self.process.pid, 0 if block else os.WNOHANG)
        if pid == 0:
            return False
        self.seconds = time.perf_counter() - self.started
        self.returncode = os.waitstatus_to_exitcode(status)
        self.process.returncode = self.returncode  # so Popen does not wait for it again
        self.peak_mb = usage.ru_maxrss / 1024  # Linux: kilobytes
        for reader in self.readers:
            reader.join(timeout=STOP_GRACE)  # the lines it printed just before exiting
        self.stderr.close()
        self.log.with_suffix(".stdout").write_text(
            "".join(f"{seconds:8.1f} s  {line}\n" for seconds, line in self.lines),
            encoding="utf-8")
        return True

    def failure(self, pattern):
        """None, or a line on why this process did not print `pattern`."""
        if pattern in self.matches and (self.stopped == "done" or self.returncode == 0):
            return None
        if self.stopped:
            how = self.stopped
        elif self.returncode == 0:
            how = "exited 0 without printing the expected line"
        else:
            how = f"exit status {self.returncode}"
        tail = [line for line in self.log.read_text(encoding="utf-8").splitlines() if line.strip()]
        return f"{how}; last stderr line: {tail[-1] if tail else '(none)'}"


def stop_all(children, reason):
    """Stops every child still running at once (SIGTERM, then SIGKILL after STOP_GRACE s).

    At once: a worker that outlives the other only logs the broken collective.
    """
    running = [c for c in children if c.returncode is None and not c.wait4(block=False)]
    for child in running:
        child.poll_hwm()  # exact here: nothing runs between this read and the signal
        child.stopped = reason
        child.process.send_signal(signal.SIGTERM)
    deadline = time.perf_counter() + STOP_GRACE
    while time.perf_counter() < deadline and any(c.returncode is None for c in running):
        for child in running:
            if child.returncode is None:
                child.wait4(block=False)
        time.sleep(0.05)
    for child in running:
        if child.returncode is None:
            child.process.kill()
            child.wait4(block=True)


def run_until(children, pattern, timeout, stop=True):
    """Runs `children` at once until each printed `pattern`, then stops them (`stop`) or
    waits for them to exit.

    A child that fails stops the others (two workers would wait for each other for
    ever); at `timeout` seconds all are stopped.
    """
    deadline = time.perf_counter() + timeout
    for child in children:
        child.start([pattern])
    reason = f"stopped at the --timeout of {timeout:.0f} s"
    while time.perf_counter() < deadline:
        for child in children:
            if child.returncode is None:
                child.poll_hwm()
                child.wait4(block=False)
        if all(c.returncode is not None for c in children):
            return children
        failed = [c.name for c in children if c.returncode not in (None, 0)]
        if failed:
            reason = f"stopped because {', '.join(failed)} failed"
            break
        # Every worker must have finished its first step: none is stopped before all have.
        if stop and all(pattern in c.matches for c in children):
            reason = "done"
            break
        time.sleep(0.05)
    stop_all(children, reason)
    return children


def fresh(folder):
    """`folder`, emptied: prepare and train refuse or resume an existing output folder."""
    shutil.rmtree(folder, ignore_errors=True)
    return folder


def measure_size(size, args, work, env):
    """Rows of the table for one corpus size: dicts with phase, rate, first step, peak, wall."""
    corpus = work / f"tweets-{size}-seed{args.seed}.csv"
    if not corpus.is_file():
        # In its own process: a child's ru_maxrss starts from its parent's, so the bench
        # itself stays small (no NumPy here).
        subprocess.run([sys.executable, str(CORPUS), str(corpus), "--rows", str(size),
                        "--seed", str(args.seed)], check=True)
    prepared = fresh(work / f"prepared-{size}")
    train = [*CLI, "train", "sentiment", *shlex.split(args.train_args), "-v"]
    rows = []

    def row(phase, child, pattern, rate=None, wall_rate=None, note=""):
        first = child.matches.get(FIRST_STEP)
        rows.append(dict(size=size, phase=phase, rate=rate, wall_rate=wall_rate, note=note,
                         first_step=float(first[1].group(1)) if first else None,
                         # a training process: to its first step; prepare: to its exit
                         wall=first[0] if first else child.seconds,
                         peak_mb=child.peak_mb, hwm_mb=child.hwm_mb, failure=child.failure(pattern),
                         log=str(child.log)))
        shown = {k: round(v, 1) if isinstance(v, float) else v for k, v in rows[-1].items()}
        print(f"  {phase}: {shown}", flush=True)
        return rows[-1]["failure"] is None

    shards = ["--shards", str(args.shards)] if args.shards else []
    prepare = Child("prepare", [*CLI, "prepare", "sentiment", "--data", str(corpus), "--out",
                                str(prepared), *shards, "--seed", str(args.seed)],
                    work / f"prepare-{size}.log", env)
    run_until([prepare], PREPARED, args.timeout, stop=False)
    rate = wall_rate = None
    if PREPARED in prepare.matches:
        seconds, match = prepare.matches[PREPARED]
        rate = float(re.sub(r"[,_]", "", match.group(3)))
        wall_rate = int(re.sub(r"[,_]", "", match.group(1))) / seconds
    files = [f for f in prepared.rglob("*") if f.is_file()]
    note = (f"CSV {corpus.stat().st_size / 1e6:,.0f} MB; prepared folder "
            f"{sum(f.stat().st_size for f in files) / 1e6:,.0f} MB in {len(files)} files")
    prepared_ok = row("prepare", prepare, PREPARED, rate, wall_rate, note)

    if prepared_ok:
        child = Child("train", [*train, "--data", str(prepared), "--out",
                                str(fresh(work / f"run-{size}"))], work / f"train-{size}.log", env)
        row("train (prepared)", run_until([child], FIRST_STEP, args.timeout)[0], FIRST_STEP)

    child = Child("stream", [*train, "--data", str(corpus), "--stream", "--out",
                             str(fresh(work / f"run-stream-{size}"))],
                  work / f"stream-{size}.log", env)
    row("train --stream", run_until([child], FIRST_STEP, args.timeout)[0], FIRST_STEP)

    if args.workers_too and prepared_ok:
        cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
        out = fresh(work / f"run-workers-{size}")
        workers = []
        for index in range(2):
            tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            workers.append(Child(f"worker {index}", [*train, "--data", str(prepared), "--out",
                                                     str(out), "--strategy", "multi-worker"],
                                 work / f"worker{index}-{size}.log",
                                 {**env, "TF_CONFIG": json.dumps(tf_config)}))
        for worker in run_until(workers, FIRST_STEP, args.timeout):
            row(worker.name, worker, FIRST_STEP)
    return rows


def number(value, digits=0):
    return "–" if value is None else f"{value:,.{digits}f}"


def table(rows, own_mb):
    """The Markdown table; ratios against the smallest size measured in the same phase.

    A peak at or below `own_mb`, the bench's own peak, may be the bench's (see the module
    docstring) and is shown as "<= own_mb".
    """
    smallest = {}
    for r in sorted(rows, key=lambda r: r["size"]):
        if r["failure"] is None:
            smallest.setdefault(r["phase"], r)
    lines = ["| texts | phase | texts/s (command's / over wall) | first step s | wall s | "
             "peak RSS MB | RSS / smallest | first step / smallest | notes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        base = smallest.get(r["phase"])
        if r["failure"] is not None:
            failure = r["failure"].replace("|", "\\|")
            lines.append(f"| {r['size']:,} | {r['phase']} | | | {number(r['wall'], 1)} | "
                         f"{number(r['peak_mb'])} | | | failed: {failure} |")
            continue
        rate = f"{number(r['rate'])} / {number(r['wall_rate'])}" if r["rate"] else ""
        rss = r["peak_mb"] / base["peak_mb"] if base and base["peak_mb"] else None
        first = (r["first_step"] / base["first_step"]
                 if base and r["first_step"] and base["first_step"] else None)
        peak = number(r["peak_mb"]) if r["peak_mb"] > own_mb else f"<= {own_mb:.0f}"
        lines.append(f"| {r['size']:,} | {r['phase']} | {rate} | {number(r['first_step'], 1)} | "
                     f"{number(r['wall'], 1)} | {peak} | {number(rss, 2)} | "
                     f"{number(first, 2)} | {r['note']} |")
    return "\n".join(lines)


def goals(rows):
    """`(passed, line)` for each of the issue's goals that the measured sizes can check."""
    checks = []
    ok = [r for r in rows if r["failure"] is None]
    sizes = sorted({r["size"] for r in rows})
    for phase in dict.fromkeys(r["phase"] for r in rows):
        peaks = {r["size"]: r["peak_mb"] for r in ok if r["phase"] == phase}
        if len(sizes) < 2:
            break
        low, high = sizes[0], sizes[-1]
        if low in peaks and high in peaks:
            ratio = peaks[high] / peaks[low]
            checks.append((ratio <= MEMORY_RATIO,
                           f"peak memory flat, {phase}: {high:,} texts {peaks[high]:,.0f} MB = "
                           f"{ratio:.2f}x of {low:,} texts' {peaks[low]:,.0f} MB "
                           f"(goal <= {MEMORY_RATIO}x)"))
        else:
            checks.append((False, f"peak memory flat, {phase}: not measured at {low:,} and "
                                  f"{high:,} texts"))
    # A throughput: judged on the largest corpus, where the fixed costs weigh least.
    for r in rows:
        if r["phase"] == "prepare" and r["size"] == sizes[-1]:
            rate = r["rate"] if r["failure"] is None else None
            checks.append((rate is not None and rate >= PREPARE_RATE,
                           f"preparation of {r['size']:,} texts: {number(rate)} texts/s on "
                           f"{os.cpu_count()} cores (over the whole process: "
                           f"{number(r['wall_rate'])}) (goal >= {PREPARE_RATE:,})"))
    for r in rows:
        if r["size"] == FIRST_STEP_SIZE and r["phase"] != "prepare":
            first = r["first_step"] if r["failure"] is None else None
            checks.append((first is not None and first <= FIRST_STEP_SECONDS,
                           f"first training step on {FIRST_STEP_SIZE:,} texts, {r['phase']}: "
                           f"{number(first, 1)} s (goal <= {FIRST_STEP_SECONDS:.0f} s)"))
    return checks


def main():
    args = build_parser().parse_args()
    if any(size < 1 for size in args.sizes):
        raise SystemExit("--sizes: each at least 1")
    if args.shards is not None and args.shards < 1:
        raise SystemExit("--shards: at least 1")
    # Unbuffered: each line reaches the bench (and its clock) when the command prints it.
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT),
           "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory(prefix="scale-") as temporary:
        work = args.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        load = os.getloadavg()
        rows = []
        for size in args.sizes:
            rows += measure_size(size, args, work, env)
        load_after = os.getloadavg()

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, {platform.node()}, {os.cpu_count()} cores, "
          f"load average {load[0]:.2f} before and {load_after[0]:.2f} after; "
          f"train flags: {args.train_args} -v; prepare --shards {args.shards or 'default'}; "
          f"the bench's own peak RSS {own:.0f} MB\n")
    print(table(rows, own))
    print()
    checks = goals(rows)
    for passed, line in checks:
        print(f"{'PASS' if passed else 'FAIL'}: {line}")
    failures = [r for r in rows if r["failure"] is not None]
    for r in failures:
        where = f"log: {r['log']}" if args.keep else "--keep DIR keeps the logs"
        print(f"\n{r['size']:,} {r['phase']}: {r['failure']} ({where})", file=sys.stderr)
    if failures or not all(passed for passed, _ in checks):
        sys.exit(1)


if __name__ == "__main__":
    main()
