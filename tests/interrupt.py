"""Interrupting `rro` mid-run: the tests of stopping and resuming all start a command and wait
until it has written its first walk, so that the signal lands with work both done and left."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path


def started_until_first_walk(command: list[str], out: Path, timeout: float, **popen) -> subprocess.Popen:
    """`command` running, with at least one line in `out`/walks.jsonl; fails if it ends before."""
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen)
    walks = out / "walks.jsonl"
    deadline = time.time() + timeout
    while run.poll() is None and time.time() < deadline and not (walks.exists() and walks.read_text().strip()):
        time.sleep(0.05)
    assert run.poll() is None, f"the run ended before it could be stopped: {run.stderr.read()[-2000:]}"
    assert walks.exists() and walks.read_text().strip(), f"no walk written within {timeout} s"
    return run
