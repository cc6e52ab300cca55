"""JSON Lines and JSON files written so that an interruption loses at most the record being written.

Every file rro keeps on disk goes through here: records appended one flushed line at a time
(`JsonlWriter`), whole files replaced atomically (`write_jsonl_atomic`, `write_json_atomic`), and
read back with a last line cut short by an interruption ignored (`read_jsonl`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def read_jsonl(path: Path) -> Iterator[dict]:
    """Records of a JSONL file; a last line cut short by an interruption is ignored."""
    if not path.exists():
        return
    with open(path) as f:
        lines = f.readlines()
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) - 1:
                return  # a partial write from an interrupted run
            raise


class JsonlWriter:
    """Appends records, one flushed line each, so an interrupted run loses at most the record
    being written; a partial last line from an earlier interruption is cut off first."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._truncate_partial_line(path)
        self.file = open(path, "a")

    @staticmethod
    def _truncate_partial_line(path: Path) -> None:
        if not path.exists() or path.stat().st_size == 0:
            return
        data = path.read_bytes()
        if not data.endswith(b"\n"):
            with open(path, "r+b") as f:
                f.truncate(data.rfind(b"\n") + 1)

    def write(self, record: BaseModel | dict) -> None:
        line = record.model_dump_json() if isinstance(record, BaseModel) else json.dumps(record)
        self.file.write(line + "\n")
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


def write_jsonl_atomic(path: Path, records: Iterable[BaseModel | dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w") as f:
        for record in records:
            f.write((record.model_dump_json() if isinstance(record, BaseModel) else json.dumps(record)) + "\n")
    os.replace(tmp, path)
