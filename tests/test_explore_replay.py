"""Replaying a fixed, expert-anchored recording (rro.explore.replay) gives exactly what running the
other settings gives: pinned against real runs on the toy environment (tests/toy.py)."""

import itertools
import json

import pytest

from rro.config import ExploreConfig
from rro.envs.base import spec
from rro.explore import explore
from rro.explore.replay import (ReplayError, ReplaySettings, check_recording, read_recording, replay, replayed_pairs,
                                summarize)
from tests.toy import EXPLORE_T, ROLLOUT_T, TASKS, ScriptedPolicy, toy_task

REWARDS = {"a": -0.5, "b": 0.0, "c": 0.4, "d": 0.8, "e": 0.395, "g": 1.0}
CANDIDATES = {  # four draws per state; duplicates and the expert's own action among them
    ("1", ()): ["a", "c", "d", "a"],
    ("1", ("c",)): ["b", "e", "submit", "d"],
    ("1", ("c", "d")): ["submit", "a", "g", "submit"],
    ("2", ()): ["b", "g", "c", "g"],
    ("2", ("g",)): ["submit", "a", "submit", "e"],
}
# The first word of each rollout from a state (then submit): Q depends on N. No script leads into
# another scripted state, so rollout i from a state is the same draw in every run (as a seed makes it).
SCRIPTS = {
    ("1", ()): ["e", "b", "g"], ("2", ()): ["d", "e", "b"],
    ("1", ("a",)): ["d", "b", "a"], ("1", ("c",)): ["c", "g", "c"], ("1", ("d",)): ["b", "d", "g"],
    ("1", ("c", "b")): ["d", "g", "b"], ("1", ("c", "d")): ["d", "d", "a"], ("1", ("c", "e")): ["g", "a", "a"],
    ("2", ("c",)): ["c", "c", "g"], ("2", ("g",)): ["g", "e", "g"], ("2", ("g", "a")): ["a", "g", "d"],
}


def test_no_script_leads_into_another():
    assert not [(state, word) for state, words in SCRIPTS.items() for word in words
                if (state[0], state[1] + (word,)) in SCRIPTS]


@pytest.fixture(autouse=True)
def toy_tasks():
    TASKS.clear()
    toy_task("1", REWARDS, expert=["c", "d"])
    toy_task("2", REWARDS, expert=["g"])
    yield
    TASKS.clear()


def explore_toy(out, **settings):
    config = ExploreConfig(env="toy", model="scripted", output=out, temperature=EXPLORE_T, rollout_temperature=ROLLOUT_T,
                           icl_shots=0, anchor="expert", **settings)
    explore(config, policy=ScriptedPolicy(CANDIDATES, SCRIPTS))
    read = lambda name: [json.loads(line) for line in (out / name).read_text().splitlines()]  # noqa: E731
    return json.loads((out / "stats.json").read_text()), read("walks.jsonl"), read("steps.jsonl")


@pytest.fixture
def recording(tmp_path):
    explore_toy(tmp_path / "recording", strategy="fixed", max_candidates=4, rollouts=3, prev0="value")
    return read_recording(tmp_path / "recording")


SETTINGS = [ReplaySettings("rising", k, n, margin, ceiling, prev0, on_no_rise)
            for k, n, margin, ceiling, prev0, on_no_rise in itertools.product(
                [1, 2, 4], [1, 3], [0.0, 0.3], [False, True], ["value", "zero"], ["continue", "stop"])
            if not (margin and n == 1)]
SETTINGS += [ReplaySettings("fixed", k, n, prev0=prev0) for k in (2, 3, 4) for n in (2, 3) for prev0 in ("value", "zero")]


@pytest.mark.parametrize("settings", SETTINGS, ids=str)
def test_a_replay_equals_running_the_settings(tmp_path, recording, settings):
    header, steps = recording
    stats, walks, _ = explore_toy(tmp_path / "run", strategy=settings.strategy, max_candidates=settings.max_candidates,
                                  rollouts=settings.rollouts, margin=settings.margin, rise_at_max=settings.rise_at_max,
                                  prev0=settings.prev0, on_no_rise=settings.on_no_rise)
    check_recording(header, steps, settings)
    replayed = replay(steps, settings, spec("toy").reward_range)
    actions = {(s["task_id"], s["step"]): s["candidate_actions"] for s in steps}
    assert [r["task_id"] for r in replayed] == [w["task_id"] for w in walks]
    for walk, record in zip(walks, replayed):
        keys = ("candidates", "q_values", "prev_value", "rose", "rollouts", "bar_rollouts")
        assert [{key: s[key] for key in keys} for s in walk["steps"]] == [{key: s[key] for key in keys} for s in record["steps"]]
        assert record["initial_rollouts"] == (walk["initial_cost"] or {}).get("rollouts", 0)
        drawn = lambda pair: actions[(pair["task_id"], pair["step"])]  # noqa: E731
        assert [(p["step"], p["q_chosen"], p["q_rejected"]) for p in walk["pairs"]] == \
            [(p["step"], p["q_chosen"], p["q_rejected"]) for p in record["pairs"]]
        assert [p["chosen"][0]["content"] for p in walk["pairs"]] == \
            [[s for s in steps if (s["task_id"], s["step"]) == (p["task_id"], p["step"])][0]["candidate_turns"][p["chosen"]]
             for p in record["pairs"]]
        assert all(drawn(p)[p["chosen"]] != drawn(p)[p["rejected"]] for p in record["pairs"])
    exported = [{k: v for k, v in p.items() if k != "replayed"} for p in replayed_pairs(tmp_path / "recording", replayed, settings)]
    assert exported == [p for walk in walks for p in walk["pairs"]]  # what `rro dpo` reads, field for field
    figures = summarize(replayed, settings.max_candidates)
    for key in ("steps", "pairs", "rollouts", "rising_rate"):
        assert figures[key] == stats[key], key
    assert figures["candidates_per_step"] == stats["candidates_per_step"]["mean"]


def test_the_grid_is_not_trivial(recording):
    """The settings above disagree with each other: stops, pairs and costs all vary."""
    _, steps = recording
    results = {s: summarize(replay(steps, s, spec("toy").reward_range), s.max_candidates) for s in SETTINGS}
    for key in ("candidates_per_step", "pairs", "rollouts", "rising_rate", "steps"):
        assert len({r[key] for r in results.values()}) >= 3, key


def test_a_recording_that_cannot_answer_is_refused(tmp_path, recording):
    header, steps = recording
    with pytest.raises(ReplayError, match="max_candidates 5 > the recording's 4"):
        check_recording(header, steps, ReplaySettings(max_candidates=5))
    with pytest.raises(ReplayError, match="rollouts 4 > the recording's 3"):
        check_recording(header, steps, ReplaySettings(max_candidates=4, rollouts=4))
    explore_toy(tmp_path / "rising", strategy="rising", max_candidates=2, rollouts=1)
    with pytest.raises(ReplayError, match="needs a fixed, expert-anchored exploration"):
        check_recording(*read_recording(tmp_path / "rising"), ReplaySettings(max_candidates=1, rollouts=1))
    explore_toy(tmp_path / "zero", strategy="fixed", max_candidates=2, rollouts=1, prev0="zero")
    with pytest.raises(ReplayError, match="prev0 = 'value' needs a recording with prev0 = 'value'"):
        check_recording(*read_recording(tmp_path / "zero"), ReplaySettings(max_candidates=1, rollouts=1))
    with pytest.raises(ReplayError, match="no finished exploration"):
        read_recording(tmp_path / "nothing")


@pytest.mark.parametrize("strategy", ["rising", "fixed"])
def test_a_replayed_competence_point_equals_the_explored_one(tmp_path, recording, strategy):
    from rro.explore.replay import competence_point
    from rro.report import competence_points

    explore_toy(tmp_path / "run", strategy=strategy, max_candidates=2, rollouts=2, prev0="value", rise_at_max=True)
    (explored,) = competence_points([tmp_path / "run"])
    replayed = competence_point(tmp_path / "recording", ReplaySettings(strategy, 2, 2, rise_at_max=True),
                                spec("toy").reward_range)
    keys = ("strategy", "anchor", "rise_at_max", "tasks", "mean_v0", "candidates_per_step", "rollouts_per_pair",
            "pairs", "rollouts")
    assert {k: replayed[k] for k in keys} == {k: explored[k] for k in keys}
    assert replayed["replayed"] and replayed["mean_v0"] != 0
