"""Episode records and their JSONL files (read and written through rro.jsonl).

An episode keeps everything needed to read, score, resume and train on it: the chat messages,
each step's raw turn, parsed action, observation and reward, token counts, and how it ended.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from rro.jsonl import RecordFileError, numbered_records

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


def read_episodes(path: Path) -> list[Episode]:
    episodes = []
    for number, record in numbered_records(path):
        try:
            episodes.append(Episode.model_validate(record))
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:3])
            raise RecordFileError(f"{path} line {number} is not an episode record ({problems}): restore the file "
                                  "from a copy, or delete that line to redo its task, and rerun") from None
    return episodes
