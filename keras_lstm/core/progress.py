"""Progress of long phases: a tqdm bar on a terminal, plain lines in logs.

Reading, deduplication, tokenization and shard writing of a large corpus take
minutes; a user must see that something moves. On a terminal (stderr is a
tty) a tqdm bar shows counts and rate; otherwise (a log, a pipe, CI) a plain
line every `every` seconds and one at the end, with no control codes.
"""

from __future__ import annotations

import sys
import time


class Progress:
    """Counts work done in one phase and reports it.

    Example:

    >>> with Progress("reading big.csv", unit="rows", verbose=0) as progress:
    ...     progress.update(1000)
    >>> progress.count
    1000
    """

    def __init__(self, what: str, unit: str = "texts", total: int | None = None, verbose=1,
                 every: float = 10.0, stream=None):
        self.what, self.unit, self.total = what, unit, total
        self.verbose = verbose
        self.every = every
        self.stream = stream or sys.stdout
        self.count = 0
        self.started = self.last = time.perf_counter()
        self.bar = None
        if verbose and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=what, unit=f" {unit}", unit_scale=True,
                            file=sys.stderr, leave=False, dynamic_ncols=True)

    def update(self, n: int = 1):
        self.count += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if self.verbose and now - self.last >= self.every:
            self.last = now
            of = f" of {self.total:,}" if self.total else ""
            self._say(f"{self.what}: {self.count:,}{of} {self.unit} ({self.rate():,.0f} {self.unit}/s)")

    def rate(self) -> float:
        return self.count / max(time.perf_counter() - self.started, 1e-9)

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def close(self, summary: str | None = None):
        """Ends the phase with one line: `summary`, or the count, time and rate."""
        if self.bar is not None:
            self.bar.close()
        if self.verbose:
            self._say(summary or f"{self.what}: {self.count:,} {self.unit} in "
                                 f"{self.seconds():.1f} s ({self.rate():,.0f} {self.unit}/s)")

    def _say(self, line):
        print(line, file=self.stream, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.close()
        elif self.bar is not None:
            self.bar.close()


_IMPORTED = time.monotonic()


def process_seconds() -> float:
    """Seconds since this process started (Linux: /proc; elsewhere: since keras_lstm loaded)."""
    import os

    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started = int(stat.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
            return float(uptime.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _IMPORTED
