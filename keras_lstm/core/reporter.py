"""Messages and progress for people, on stderr; results are the callers' to print on stdout.

Every command prints two kinds of lines. Results (predictions, metrics
tables, JSON, "run folder: ...") go to stdout, so `keras-lstm train ... >
out.txt` or `keras-lstm predict ... | jq` get only them. Everything said
along the way (the preset chosen, epochs, phases of a large corpus, export
steps, warnings) goes through a `Reporter` to stderr.

A `Reporter` has a verbosity (0: `-q`, only warnings and errors; 1: the
default; 2: `-v`, more detail) and a `progress(...)` for long phases: a tqdm
bar when its stream is a terminal, otherwise (a log, a pipe, CI) a plain
line every `every` seconds and one at the end, without control codes.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

__all__ = ["Progress", "Reporter", "process_seconds"]


class Reporter:
    """Says what a command is doing, on stderr, as loudly as its verbosity allows.

    Args:
        verbosity: 0 quiet (warnings only), 1 messages and progress, 2 also
            details (`-v`).
        stream: Where to write (default: `sys.stderr` at the time of writing,
            so a redirection made later is followed).
        every: Seconds between plain progress lines off a terminal.

    Example:

    >>> import io
    >>> log = io.StringIO()
    >>> reporter = Reporter(verbosity=1, stream=log)
    >>> reporter.message("preset: fast")
    >>> reporter.message("first training step after 3.0 s", level=2)
    >>> with reporter.progress("reading big.csv", unit="rows") as progress:
    ...     progress.update(1000)
    >>> log.getvalue().splitlines()[0]
    'preset: fast'
    >>> log.getvalue().splitlines()[1].startswith("reading big.csv: 1,000 rows in ")
    True
    """

    def __init__(self, verbosity: int = 1, stream: TextIO | None = None, every: float = 10.0):
        self.verbosity = int(verbosity or 0)
        self._stream = stream
        self.every = every

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def enabled(self, level: int = 1) -> bool:
        """Whether lines of `level` (1 normal, 2 detail) are shown."""
        return self.verbosity >= level

    def is_terminal(self) -> bool:
        """Whether the stream is a terminal (tqdm bars) rather than a log or a pipe."""
        try:
            return bool(self.stream.isatty())
        except (AttributeError, ValueError):  # no isatty, or a closed stream
            return False

    def message(self, line: str, level: int = 1) -> None:
        """Writes `line` if the verbosity reaches `level`."""
        if self.enabled(level):
            self.write(line)

    def warning(self, line: str) -> None:
        """Writes `keras-lstm: warning: LINE`, even when quiet (`-q` hides only progress)."""
        self.write(f"keras-lstm: warning: {line}")

    def write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def progress(self, what: str, total: int | None = None, unit: str = "texts",
                 level: int = 1, summary: bool = True, every: float | None = None) -> Progress:
        """A `Progress` for one phase, shown if the verbosity reaches `level`.

        Args:
            what: The phase, as the lines start ("reading big.csv").
            total: The count at the end, if known.
            unit: What is counted ("rows", "steps"; "B" for bytes, shown in KiB/MiB).
            level: 1 normal, 2 detail.
            summary: Whether `close()` writes a closing line; without one, a
                terminal keeps the finished bar on screen instead.
            every: Seconds between plain lines (default: the reporter's).
        """
        return Progress(what, unit=unit, total=total, reporter=self,
                        show=self.enabled(level), summary=summary,
                        every=self.every if every is None else every)


class Progress:
    """Counts work done in one phase and reports it (made by `Reporter.progress`).

    Example:

    >>> with Reporter(verbosity=0).progress("reading big.csv", unit="rows") as progress:
    ...     progress.update(1000)
    >>> progress.count
    1000
    """

    def __init__(self, what: str, unit: str = "texts", total: int | None = None,
                 reporter: Reporter | None = None, show: bool = True, summary: bool = True,
                 every: float = 10.0):
        self.what, self.unit, self.total = what, unit, total
        self.reporter = reporter or Reporter()
        self.show, self.summary, self.every = show, summary, every
        self.count = 0
        self.started = self.last = time.perf_counter()
        self.detail = ""
        self.closed = False
        self.bar = None
        if show and self.reporter.is_terminal():
            self.bar = _bar(what, unit, total, self.reporter.stream)

    def update(self, n: int = 1) -> None:
        """Adds `n` to the count; a plain line when `every` seconds have passed since the last."""
        self.count += n
        if self.bar is not None:
            self.bar.update(n)
            return
        now = time.perf_counter()
        if self.show and now - self.last >= self.every:
            self.last = now
            of = f" of {self._amount(self.total)}" if self.total else ""
            detail = f", {self.detail}" if self.detail else ""
            self.reporter.write(f"{self.what}: {self._amount(self.count)}{of} {self._unit()} "
                                f"({self._amount(self.rate())} {self._unit()}/s{detail})")

    def note(self, detail: str) -> None:
        """Shows `detail` ("3,000 rows") beside the count: the bar's postfix, or in each line."""
        self.detail = detail
        if self.bar is not None:
            self.bar.set_postfix_str(detail, refresh=False)

    def rate(self) -> float:
        return self.count / max(self.seconds(), 1e-9)

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def close(self, summary: str | None = None) -> None:
        """Ends the phase with one line: `summary`, or the count, time and rate.

        No line when the progress was made with `summary=False`; then a
        terminal's bar stays on screen, as the last word. A second call does nothing.
        """
        if self.closed:
            return
        self.closed = True
        said = self.show and self.summary
        if self.bar is not None:
            self.bar.leave = not said
            self.bar.close()
            self.bar = None
        if said:
            self.reporter.write(summary or f"{self.what}: {self._amount(self.count)} {self._unit()}"
                                f" in {self.seconds():.1f} s ({self._amount(self.rate())} "
                                f"{self._unit()}/s)")

    def _unit(self):
        return "MiB" if self.unit == "B" else self.unit

    def _amount(self, n):
        if self.unit == "B":
            return f"{n / 2**20:,.1f}"
        return f"{n:,.0f}" if n >= 100 or float(n).is_integer() else f"{n:.3g}"

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.close()
        elif self.bar is not None:
            self.bar.close()
            self.bar = None


def _bar(what, unit, total, stream):
    from tqdm import tqdm

    # A terminal that reports no size (a bare pty) still gets a bar: tqdm would draw none.
    try:
        columns, lines = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        columns, lines = 0, 0
    scaled = {"unit": "B", "unit_divisor": 1024} if unit == "B" else {"unit": f" {unit}"}
    # 1.2M rows reads better than 1234567 rows; 3/40 steps better than 3.00/40.0.
    scale = unit == "B" or not total or total >= 10_000
    return tqdm(total=total, desc=what, unit_scale=scale, file=stream, ncols=columns or 80,
                nrows=lines or 24, **scaled)


_IMPORTED = time.monotonic()


def process_seconds() -> float:
    """Seconds since this process started (Linux: /proc; elsewhere: since keras_lstm loaded)."""
    try:
        with open("/proc/self/stat") as stat, open("/proc/uptime") as uptime:
            started = int(stat.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
            return float(uptime.read().split()[0]) - started
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _IMPORTED
