"""Episode records and their JSONL files.

An episode keeps everything needed to read, score, resume and train on it: the chat messages,
each step's raw turn, parsed action, observation and reward, token counts, and how it ended.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

Termination = Literal["submitted", "max_steps", "invalid", "running"]


class Step(BaseModel):
    turn: str  # the agent's text as generated
    action: str | None  # the parsed action; None when the turn was malformed
    well_formed: bool
    observation: str
    reward: float = 0.0
    done: bool = False
    generated_tokens: int = 0
    prompt_tokens: int = 0
    info: dict[str, Any] = Field(default_factory=dict)


class Episode(BaseModel):
    env: str
    task_id: str
    policy: str = ""
    messages: list[dict[str, str]] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    reward: float = 0.0
    termination: Termination = "running"
    wall_s: float = 0.0
    task_fields: dict[str, Any] = Field(default_factory=dict)  # e.g. db and hardness, for breakdowns

    @property
    def done(self) -> bool:
        return self.termination != "running"

    @property
    def actions(self) -> list[str | None]:
        return [step.action for step in self.steps]


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


def read_episodes(path: Path) -> list[Episode]:
    return [Episode.model_validate(record) for record in read_jsonl(path)]


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
