"""What an exploration folder holds: its walk, step and pair records, declared once.

    walks.jsonl   one WalkRecord per task: the walk's path, values, and its steps and pairs (the durable record)
    steps.jsonl   every StepRecord of the walks, in task order (derived from walks.jsonl when a run ends)
    pairs.jsonl   every PairRecord, in TRL's conversational format (`prompt`, `chosen`, `rejected`)

Each line is written by `_line` and read back by `_read`, the one place a line is encoded or
decoded: the line carries the record format's `version` beside the record's fields. A line of an
older version is brought up to this one as it is read (fields added since are derived from the
record and the folder's settings); a line of a newer version is refused, naming both versions.

Versions:
    1  (no `version` field) records written before versions existed: steps lack `bar` and `chosen`.
    2  steps carry the rule's `bar` and `chosen` candidate beside its verdict `rose`, so that
       readers (the report page) never recompute the rule.

The record types are TypedDicts: records stay plain dicts (in memory, in JSON, for `datasets`),
and their shape is checked when they are read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from typing_extensions import NotRequired, TypedDict

from rro.config import ExploreConfig, value_when_absent
from rro.envs.base import spec
from rro.explore.rule import RiseRule
from rro.jsonl import JsonlWriter, numbered_records, write_jsonl_atomic

RECORD_VERSION = 2

WALKS, STEPS, PAIRS = "walks.jsonl", "steps.jsonl", "pairs.jsonl"


class RecordError(ValueError):
    """A record file that cannot be read as this version of rro writes it."""


_OPEN = ConfigDict(extra="allow")  # a field of a record not declared here is kept, not refused


@with_config(_OPEN)
class Cost(TypedDict):
    """What value estimates cost (rro.explore.walk.estimate_cost)."""

    rollouts: int  # episodes rolled out (an exact, terminal action counts one)
    env_steps: int  # environment steps they took
    rollout_generated_tokens: int
    rollout_prompt_tokens: int
    cache_hits: int  # estimates answered by an earlier one of the same action in the same state
    exact: int  # estimates of terminal actions: the environment's reward, no rollout
    rollouts_saved: NotRequired[int]  # rollouts the adaptive budget did not run


@with_config(_OPEN)
class CandidateCost(Cost):
    generated_tokens: int  # the candidate's own turn
    prompt_tokens: int


@with_config(_OPEN)
class StepRecord(Cost):
    """One explored state: the candidates drawn there, what the rule made of them, and what it cost.

    rising and fixed (rro.explore.walk) fill every field; ipr and outcome steps (rro.explore.baselines)
    compare one policy action with the expert's and leave the rule's fields None or out."""

    task_id: str
    step: int  # the state's place in the walk: 0 is the task's start
    candidates: int  # candidates drawn
    distinct_actions: int
    rose: bool | None  # the verdict: the chosen candidate rose above `bar` (None: ipr, outcome)
    bar: float | None  # what a candidate had to exceed: rro.explore.rule.RiseRule.bar(prev_value)
    chosen: int | None  # the chosen candidate's place among those drawn (the highest Q, earliest of equals)
    q_values: list[float]  # each candidate's Q, in the order drawn (ipr, outcome: the policy's)
    chosen_q: float  # the chosen candidate's Q (ipr, outcome: the expert's)
    candidate_generated_tokens: int
    candidate_prompt_tokens: int
    anchor: NotRequired[str]  # policy or expert
    prev_value: NotRequired[float]  # the previous value the bar is built on
    q_rewards: NotRequired[list[list[float]]]  # every candidate's rollout rewards, so a step can be replayed
    prev_rewards: NotRequired[list[float]]  # the rollout rewards behind prev_value
    expert_action: NotRequired[str | None]  # expert anchor: the action the walk took here
    candidate_turns: NotRequired[list[str]]  # the candidates as drawn
    candidate_actions: NotRequired[list[str | None]]  # their parsed actions (None: malformed)
    prompt_messages: NotRequired[int]  # the state's prompt: the walk's first messages
    bar_rollouts: NotRequired[int]  # expert anchor: the rollouts of the bar's estimate, included in the costs
    candidate_costs: NotRequired[list[CandidateCost]]  # the costs per candidate, for replays of shorter steps
    bar_cost: NotRequired[Cost | None]  # the bar's estimate's cost
    wall_s: NotRequired[float]  # overlaps across the tasks explored together: not to be summed


@with_config(_OPEN)
class PairRecord(TypedDict):
    """A preference pair in TRL's conversational format, and where it came from."""

    prompt: list[dict[str, str]]  # the messages up to the state
    chosen: list[dict[str, str]]  # the chosen side: one turn (step pairs) or the rest of a trajectory (outcome)
    rejected: list[dict[str, str]]
    task_id: str
    env: str
    step: int
    q_chosen: float
    q_rejected: float
    prev_value: float | None  # the step's previous value (None: ipr, outcome)
    strategy: str
    anchor: NotRequired[str]


@with_config(_OPEN)
class WalkRecord(TypedDict):
    """One task's exploration: its path (the chosen candidates', or the expert's), values, steps and pairs."""

    task_id: str
    strategy: str
    end: str  # why the walk ended: submitted, max_steps, invalid, no_rise, expert_ended
    reward: float  # the walked path's final reward
    values: list[float]  # the bars' values: prev0, then each step's
    turns: list[str]  # the walked path's turns
    steps: list[StepRecord]
    pairs: list[PairRecord]
    instruction: NotRequired[str]
    observations: NotRequired[list[str]]
    messages: NotRequired[list[dict[str, str]]]  # the walked path as chat messages
    initial_cost: NotRequired[dict[str, int]]  # what V(s0) cost (empty with prev0 = "zero")
    wall_s: NotRequired[float]  # the task's share of its chunk's wall time (absent when replayed)


_SHAPES = {WALKS: TypeAdapter(WalkRecord), STEPS: TypeAdapter(StepRecord), PAIRS: TypeAdapter(PairRecord)}


def _line(record: dict[str, Any]) -> dict[str, Any]:
    """A record as one line of its file: the version first, then the record's fields."""
    return {"version": RECORD_VERSION, **record}


def _read(folder: Path, name: str) -> Iterator[dict[str, Any]]:
    """The records of `folder/name` at this version: checked, brought up from older versions, refused
    from newer ones."""
    path = Path(folder) / name
    rule = None
    for number, line in numbered_records(path):
        version = line.pop("version", 1)
        if not isinstance(version, int) or version > RECORD_VERSION:
            raise RecordError(f"{path}:{number} is a record of version {version!r}, written by a newer rro; "
                              f"this one reads versions 1 to {RECORD_VERSION}: upgrade rro to read it")
        if version < 2 and name != PAIRS:
            rule = rule or folder_rule(folder)
            for step in line.get("steps", []) if name == WALKS else [line]:
                _add_decision(step, rule)
        try:
            _SHAPES[name].validate_python(line)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors()[:3])
            raise RecordError(f"{path}:{number} is not a {name} record: {problems}") from None
        yield line


def _add_decision(step: dict[str, Any], rule: RiseRule) -> None:
    """Version 1 -> 2: the bar and the chosen candidate of a step recorded without them, as the rule
    (rro.explore.rule) decided them when the step was explored."""
    if "bar" in step and "chosen" in step:
        return
    q = step.get("q_values")
    if step.get("rose") is None or not q or "prev_value" not in step:  # ipr, outcome: no bar, no choice
        step.update(bar=None, chosen=None)
        return
    step.update(bar=rule.bar(step["prev_value"]), chosen=max(range(len(q)), key=lambda i: q[i]))


def folder_rule(folder: Path) -> RiseRule:
    """The rise rule an exploration folder ran with, from its config.json (a setting that a folder
    saved before it existed counts as what the run did without it)."""
    config_file = Path(folder) / "config.json"
    saved = json.loads(config_file.read_text()) if config_file.exists() else {}
    setting = lambda name: saved.get(name, value_when_absent(ExploreConfig.model_fields[name]))  # noqa: E731
    try:
        reward_range = spec(setting("env")).reward_range
    except KeyError:  # an environment not installed here: its ceiling is unknown
        return RiseRule(setting("margin"))
    return RiseRule.of(setting("margin"), setting("rise_at_max"), reward_range)


def read_walks(folder: Path) -> list[WalkRecord]:
    """The walk records of an exploration folder (none when it has no walks.jsonl yet)."""
    return list(_read(folder, WALKS))  # type: ignore[arg-type]


def read_steps(folder: Path) -> list[StepRecord]:
    return list(_read(folder, STEPS))  # type: ignore[arg-type]


def read_pairs(folder: Path) -> list[PairRecord]:
    return list(_read(folder, PAIRS))  # type: ignore[arg-type]


class WalkLog:
    """Appends walk records to `folder/walks.jsonl` as tasks finish (rro.jsonl.JsonlWriter: a record
    is a flushed line, a partial last line is cut off first, and each line carries the folder's
    `settings` digest: rro.config.guard_output_dir)."""

    def __init__(self, folder: Path, settings: str | None = None):
        self._writer = JsonlWriter(Path(folder) / WALKS, settings)

    def write(self, walk: WalkRecord) -> None:
        self._writer.write(_line(walk))

    def __enter__(self) -> WalkLog:
        return self

    def __exit__(self, *exc) -> None:
        self._writer.close()


def write_walks(folder: Path, walks: Iterable[WalkRecord], settings: str | None = None) -> None:
    """Replace `folder/walks.jsonl` at once (a replayed exploration writes every walk together);
    `settings`: the folder's settings digest, carried by every line (rro.config.guard_output_dir)."""
    write_jsonl_atomic(Path(folder) / WALKS, map(_line, walks), settings)


def write_steps(folder: Path, steps: Iterable[StepRecord], settings: str | None = None) -> None:
    write_jsonl_atomic(Path(folder) / STEPS, map(_line, steps), settings)


def write_pairs(folder: Path, pairs: Iterable[PairRecord], settings: str | None = None) -> None:
    write_jsonl_atomic(Path(folder) / PAIRS, map(_line, pairs), settings)
