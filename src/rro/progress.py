"""One progress display for every long stage: a live bar on a terminal, plain lines in a log.

On a terminal, a stage (experts, sft, eval, explore, dpo) draws one rich bar: what runs, how far,
its running figures, elapsed time and time left. Where standard error is not a terminal (a log
file, a batch scheduler, a pipe), a live bar cannot draw, and rich would print it once, at the
end. There `StageProgress` prints a plain line instead: when the stage starts, every
`RRO_PROGRESS_INTERVAL` seconds (default 30) while it runs, whether or not anything finished in
between, and when it ends:

    [01:02:03] sft  12/18 steps  4.1 s/step  ETA 0:00:25  elapsed 0:00:49  loss 1.2345

The rate counts only what this run finished (not what a resumed run found done), and the ETA is
what is left at that rate.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import timedelta

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

INTERVAL_VARIABLE = "RRO_PROGRESS_INTERVAL"
DEFAULT_INTERVAL = 30.0


def log_interval() -> float:
    """Seconds between two plain progress lines (`RRO_PROGRESS_INTERVAL`, default 30)."""
    raw = os.environ.get(INTERVAL_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise ValueError(f"{INTERVAL_VARIABLE} must be a number of seconds above 0, not {raw!r}")
    return seconds


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


def _rate(per_second: float, unit: str) -> str:
    singular = unit[:-1] if unit.endswith("s") else unit
    if per_second >= 1:
        return f"{per_second:.1f} {unit}/s"
    return f"{1 / per_second:.1f} s/{singular}"


class StageProgress:
    """Progress of one stage over `total` units (steps, tasks), with a line of running figures.

    Use as a context manager; call `update(completed=..., advance=..., figures=...)` as work ends.
    """

    def __init__(self, stage: str, total: int, unit: str, *, completed: int = 0, figures: str = "",
                 console: Console | None = None):
        self.stage, self.total, self.unit = stage, total, unit
        self.completed, self.figures = completed, figures
        self.console = console or Console(stderr=True)
        self._resumed_at = completed
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._beat: threading.Thread | None = None
        self._bar: Progress | None = None

    @property
    def plain(self) -> bool:
        """Plain lines (a log) rather than a live bar (a terminal, or a notebook, where rich draws too)."""
        return not (self.console.is_terminal or self.console.is_jupyter)

    def __enter__(self) -> StageProgress:
        self._started = time.monotonic()
        if self.plain:
            interval = log_interval()
            self._print_line()
            self._beat = threading.Thread(target=self._every, args=(interval,), name=f"progress {self.stage}",
                                          daemon=True)
            self._beat.start()
        else:
            self._bar = Progress(
                TextColumn(f"[bold]{self.stage}[/bold]"), BarColumn(), MofNCompleteColumn(), TextColumn(self.unit),
                TextColumn("{task.fields[figures]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                console=self.console,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.stage, total=self.total, completed=self.completed, figures=self.figures)
        return self

    def update(self, completed: int | None = None, advance: int = 0, figures: str | None = None) -> None:
        with self._lock:
            if completed is not None:
                self.completed = completed
            self.completed += advance
            if figures is not None:
                self.figures = figures
        if self._bar is not None:
            self._bar.update(self._task, completed=self.completed, figures=self.figures)

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self._beat is not None:
            self._stopped.set()
            self._beat.join()
            if exc_type is None:  # an interrupted stage's last line is why it stopped, not where it was
                self._print_line()
        if self._bar is not None:
            self._bar.stop()

    def _every(self, interval: float) -> None:
        while not self._stopped.wait(interval):
            self._print_line()

    def line(self) -> str:
        """The plain progress line as of now."""
        with self._lock:
            completed, figures = self.completed, self.figures
        elapsed = time.monotonic() - self._started
        parts = [f"[{time.strftime('%H:%M:%S')}] {self.stage}", f"{completed}/{self.total} {self.unit}"]
        finished_here = completed - self._resumed_at
        if finished_here > 0 and elapsed > 0:
            per_second = finished_here / elapsed
            parts.append(_rate(per_second, self.unit))
            parts.append(f"ETA {_duration(max(0, self.total - completed) / per_second)}")
        parts.append(f"elapsed {_duration(elapsed)}")
        if figures:
            parts.append(figures)
        return "  ".join(parts)

    def _print_line(self) -> None:
        # print, not the console: no markup, no wrapping at a guessed width, flushed at once for `tail -f`.
        print(self.line(), file=self.console.file, flush=True)
