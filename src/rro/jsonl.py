"""JSON Lines and JSON files written so that an interruption loses at most the record being written.

Every file rro keeps on disk goes through here: records appended one flushed line at a time
(`JsonlWriter`), whole files replaced atomically (`write_jsonl_atomic`, `write_json_atomic`), and
read back (`read_jsonl`) trusting nothing that cannot be read:

- the last line of a file, when it lacks its newline, was cut short by an interruption: readers
  pass over it, and the next `JsonlWriter` on the file removes it and says so (its record is made
  again by the resumed run);
- any other line that is not a JSON object (garbage, bytes that are not UTF-8, `null`, `{}`) is an
  error naming the file, the line number and what to do, never passed over;
- a line may carry the digest of the settings that identify its folder (`settings`, see
  rro.config.guard_output_dir): a resume refuses lines of other settings, so a folder whose
  config.json was deleted or replaced cannot mix two settings' records. Readers drop the digest.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

SETTINGS = "settings"  # the key of a record line's settings digest


class RecordFileError(ValueError):
    """A line of a record file that cannot be trusted; the message names the file, the line and what to do."""


def _unreadable(path: Path, number: int, what: str) -> RecordFileError:
    return RecordFileError(f"{path} line {number} {what}: rro did not write it so (the file was edited or damaged "
                           f"since). Restore the file from a copy, or delete that line to redo its task, and rerun")


def numbered_records(path: Path, settings: str | None = None, unstamped: bool = True) -> Iterator[tuple[int, dict]]:
    """(line number, record) of every whole line of a JSONL file (see the module's text). With
    `settings`, a line carrying another settings digest is an error, and so is a line carrying none
    unless `unstamped` (records written before lines carried digests, when config.json vouches for them)."""
    if not path.exists():
        return
    lines = path.read_bytes().split(b"\n")
    lines.pop()  # after the last newline: b"", or a line cut short by an interruption
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise _unreadable(path, number, "is not UTF-8 text") from None
        except json.JSONDecodeError as err:
            raise _unreadable(path, number, f"is not JSON ({err.msg}, column {err.colno})") from None
        if not isinstance(record, dict) or not record:
            raise _unreadable(path, number, f"is {raw.decode()[:40]}, not a record")
        stamp = record.pop(SETTINGS, None)
        if settings is not None and stamp != settings and (stamp is not None or not unstamped):
            why = (f"carries no settings digest (written by an older rro) and {path.parent / 'config.json'} is missing"
                   if stamp is None else "was written with other settings than this run's (its folder's config.json "
                   "was deleted or replaced since)")
            raise RecordFileError(f"{path} line {number} {why}. Rerun with the settings that wrote the folder, or "
                                  f"write to another output folder")
        yield number, record


def read_jsonl(path: Path) -> Iterator[dict]:
    """The records of a JSONL file (see the module's text): a torn last line passed over, any
    other unreadable line an error naming the file and the line."""
    for _number, record in numbered_records(path):
        yield record


def _line(record: BaseModel | dict, settings: str | None) -> str:
    if isinstance(record, BaseModel):
        record = record.model_dump(mode="json")
    return json.dumps({**record, SETTINGS: settings} if settings is not None else record)


class JsonlWriter:
    """Appends records, one flushed line each, so an interrupted run loses at most the record
    being written; a line cut short by an earlier interruption is removed first, and said. With
    `settings`, every line carries that settings digest."""

    def __init__(self, path: Path, settings: str | None = None):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._remove_torn_line(path)
        self.settings = settings
        self.file = open(path, "a")

    @staticmethod
    def _remove_torn_line(path: Path) -> None:
        if not path.exists() or path.stat().st_size == 0:
            return
        data = path.read_bytes()
        if not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with open(path, "r+b") as f:
                f.truncate(keep)
            print(f"note: {path} ended in a line cut short by an interruption ({len(data) - keep} bytes): removed; "
                  "its record is made again", file=sys.stderr)

    def write(self, record: BaseModel | dict) -> None:
        self.file.write(_line(record, self.settings) + "\n")
        self.file.flush()
        os.fsync(self.file.fileno())

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def write_jsonl_atomic(path: Path, records: Iterable[BaseModel | dict], settings: str | None = None) -> None:
    """Replace `path` with `records` at once (each line carrying `settings` when given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        for record in records:
            f.write(_line(record, settings) + "\n")
    os.replace(tmp, path)
