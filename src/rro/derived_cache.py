"""Caches that rro derives from its inputs, checksummed when made and verified when opened.

The SQLite databases converted from InterCode's dump, the checkpoints converted from a named
model's GGUF file, and WebShop's search index are made once under `RRO_HOME` and then used by
every run. They feed rewards and policies, so none is used unverified: when a cache is made, the
SHA-256 of every file in it goes into `rro-manifest.json` beside them; when it is opened, every
file is checked against that record. A cache that is missing, incomplete, changed (a flipped
byte, a deleted file, an extra file) or has no record is rebuilt, and the rebuild is said on
stderr. Before this, a damaged database made the expert score 0.00 with exit status 0.

Verification reads every byte once per process (a few hundred MB for a 135M model: about a
second); a process that opens a cache again uses the result while the files' sizes and
modification times are unchanged.

A cache is built in a temporary folder beside it and renamed into place, under a file lock, so
processes that start together (the workers of one run) build it once and a builder killed midway
leaves no half-made cache: what it left beside the cache is deleted by the next build.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from rro.fetch import sha256_of

MANIFEST = "rro-manifest.json"


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def _signature(folder: Path) -> tuple:
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in _files(folder))


def write_manifest(folder: Path) -> None:
    """Record the checksum of every file in `folder` (call it last, once the files are complete)."""
    sums = {str(p.relative_to(folder)): sha256_of(p) for p in _files(folder)}
    (folder / MANIFEST).write_text(json.dumps({"sha256": sums}, indent=1, sort_keys=True) + "\n")


def damage(folder: Path) -> str | None:
    """What is wrong with the cache in `folder` (None when every file matches its record)."""
    if not folder.is_dir():
        return "it is missing"
    try:
        recorded = json.loads((folder / MANIFEST).read_text())["sha256"]
    except FileNotFoundError:
        return f"it has no checksum record ({MANIFEST}): incomplete, or made by an older rro"
    except (OSError, ValueError, KeyError, TypeError):
        return f"its checksum record ({MANIFEST}) is unreadable"
    present = {str(p.relative_to(folder)): p for p in _files(folder)}
    for name in sorted(recorded):
        if name not in present:
            return f"{name} is missing"
        if sha256_of(present[name]) != recorded[name]:
            return f"{name} does not match its checksum"
    extra = sorted(set(present) - set(recorded))
    if extra:
        return f"{extra[0]} was not part of it"
    return None


_verified: dict[Path, tuple] = {}  # folder -> its files' signature when this process last verified it


def open_or_build(target: Path, build: Callable[[Path], None], what: str,
                  fits: Callable[[Path], bool] | None = None) -> Path:
    """`target`, a verified cache folder: built with `build(folder)` when missing, rebuilt (and said
    so) when damaged or, given `fits`, made from other inputs than the ones now given."""
    target = Path(target)
    if target in _verified and target.is_dir() and _verified[target] == _signature(target):
        return target  # verified by this process, and unchanged since
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if the process dies
        problem = damage(target) if target.exists() else None
        if target.exists() and problem is None and fits is not None and not fits(target):
            problem = "it was made from other inputs"
        if target.exists() and problem is None:
            _verified[target] = _signature(target)
            return target
        if target.exists():
            print(f"note: rebuilding {what} in {target}, not used as found: {problem}", file=sys.stderr)
            _remove(target)
        # One name, as only the lock's holder builds: what is found there was left by a builder
        # that was killed (a converted checkpoint is GBs), and goes first.
        tmp = target.parent / f".building-{target.name}"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(target.parent / f".removing-{target.name}", ignore_errors=True)
        tmp.mkdir()
        try:
            build(tmp)
            write_manifest(tmp)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        _verified[target] = _signature(target)
    return target


def _remove(folder: Path) -> None:
    # Renamed away first, so that nobody opens a half-deleted cache (called under the lock, so the
    # name is ours; a removal that was killed midway is finished here).
    doomed = folder.parent / f".removing-{folder.name}"
    shutil.rmtree(doomed, ignore_errors=True)
    os.replace(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)
