"""The exploration records (rro.explore.records): one writer and one reader per file, versioned."""

import json
from pathlib import Path

import pytest

from rro.explore.records import (RECORD_VERSION, RecordError, WalkLog, read_pairs, read_steps, read_walks, write_pairs,
                                 write_steps, write_walks)
from rro.explore.rule import CEILING_TOLERANCE

RECORD = Path(__file__).parent.parent / "docs" / "results" / "compare-large" / "record"


def step(step=0, q=(0.2, 1.0), prev=1.0, rose=True, **fields):
    return {"task_id": "7", "step": step, "candidates": len(q), "distinct_actions": len(q), "rose": rose,
            "prev_value": prev, "q_values": list(q), "chosen_q": max(q), "candidate_generated_tokens": 3,
            "candidate_prompt_tokens": 9, "rollouts": 4, "env_steps": 8, "rollout_generated_tokens": 30,
            "rollout_prompt_tokens": 90, "cache_hits": 0, "exact": 1, **fields}


def pair():
    return {"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}],
            "rejected": [{"role": "assistant", "content": "b"}], "task_id": "7", "env": "intercode-sql", "step": 0,
            "q_chosen": 1.0, "q_rejected": 0.2, "prev_value": 1.0, "strategy": "rising", "anchor": "policy"}


def walk(steps):
    return {"task_id": "7", "strategy": "rising", "end": "submitted", "reward": 1.0, "values": [1.0, 1.0],
            "turns": ["t"], "steps": steps, "pairs": [pair()]}


def folder_of_version_1(tmp_path, steps, **config):
    """A folder as rro wrote it before records had versions: no `version`, steps without bar and chosen."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "config.json").write_text(json.dumps({"env": "intercode-sql", "strategy": "rising", **config}))
    (tmp_path / "walks.jsonl").write_text(json.dumps(walk(steps)) + "\n")
    (tmp_path / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    (tmp_path / "pairs.jsonl").write_text(json.dumps(pair()) + "\n")
    return tmp_path


def test_written_records_read_back_as_they_were(tmp_path):
    steps = [step(bar=0.5, chosen=1), step(1, q=(0.3,), rose=False, bar=0.9, chosen=0)]
    write_walks(tmp_path, [walk(steps)])
    write_steps(tmp_path, steps)
    write_pairs(tmp_path, [pair()])
    assert read_walks(tmp_path) == [walk(steps)] and read_steps(tmp_path) == steps and read_pairs(tmp_path) == [pair()]
    for name in ("walks.jsonl", "steps.jsonl", "pairs.jsonl"):  # the version opens every line
        assert all(line.startswith(f'{{"version": {RECORD_VERSION}, ') for line in (tmp_path / name).read_text().splitlines())
    with WalkLog(tmp_path) as log:  # appending: the same lines
        log.write(walk(steps))
    assert read_walks(tmp_path) == [walk(steps)] * 2


def test_a_version_1_folder_loads_with_the_bar_and_choice_derived_from_its_settings(tmp_path):
    # The ceiling rule is on (the folder's rise_at_max): a candidate at the maximum rose above a
    # previous value already at the maximum, and its bar is held just below it.
    folder = folder_of_version_1(tmp_path / "on", [step(), step(1, q=(0.5, 0.5, 0.1), prev=0.25, rose=True)],
                                 rise_at_max=True, margin=0.1)
    first, second = read_steps(folder)
    assert (first["bar"], first["chosen"]) == (1.0 - CEILING_TOLERANCE, 1)
    assert second["bar"] == pytest.approx(0.35) and second["chosen"] == 0  # the earliest of equals
    assert read_walks(folder)[0]["steps"] == [first, second]
    assert read_pairs(folder) == [pair()]
    # A folder saved before rise_at_max existed ran without the ceiling rule: the bar is prev + margin.
    (strict,) = read_steps(folder_of_version_1(tmp_path / "before", [step(rose=False)]))
    assert strict["bar"] == 1.0


def test_baseline_steps_have_no_bar_or_choice(tmp_path):
    folder = folder_of_version_1(tmp_path, [{**step(rose=None), "q_values": [0.2]}], strategy="ipr")
    (ipr,) = read_steps(folder)
    assert ipr["bar"] is None and ipr["chosen"] is None


def test_the_committed_record_loads_and_its_verdicts_agree_with_the_derived_bars():
    steps = read_steps(RECORD / "rising" / "iter1" / "explore")
    assert len(steps) > 500
    assert all(s["rose"] == (s["q_values"][s["chosen"]] > s["bar"]) for s in steps)
    # The ceiling rule was on: some step rose at the maximum reward though its previous value was already there.
    assert any(s["rose"] and s["prev_value"] == 1.0 for s in steps)


def test_a_newer_record_is_refused_naming_both_versions(tmp_path):
    (tmp_path / "steps.jsonl").write_text(json.dumps({"version": RECORD_VERSION + 1, **step()}) + "\n")
    with pytest.raises(RecordError, match=f"steps.jsonl:1 is a record of version {RECORD_VERSION + 1}, written by a "
                                          f"newer rro; this one reads versions 1 to {RECORD_VERSION}"):
        read_steps(tmp_path)


def test_a_malformed_record_is_refused_naming_the_line_and_field(tmp_path):
    good, bad = step(bar=0.5, chosen=1), {**step(bar=0.5, chosen=1), "q_values": "high"}
    del bad["candidates"]
    write_steps(tmp_path, [good, bad])
    with pytest.raises(RecordError, match=r"steps.jsonl:2 is not a steps.jsonl record: candidates: Field required; "
                                          r"q_values: Input should be a valid list"):
        read_steps(tmp_path)


def test_a_folder_without_records_reads_as_empty(tmp_path):
    assert read_walks(tmp_path) == [] and read_steps(tmp_path) == [] and read_pairs(tmp_path) == []
