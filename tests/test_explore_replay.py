"""Replaying a fixed, expert-anchored recording (rro.explore.replay) gives exactly what running the
other settings gives: pinned against real runs on the toy environment (tests/toy.py)."""

import itertools
import json

import pytest

from rro.config import ExploreConfig
from rro.envs.base import spec
from rro.explore import explore
from rro.explore.records import read_pairs
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
    ("3", ()): ["a", "e", "d", "a"],  # not the expert's b: the next bar is paid for, whatever K
    ("3", ("b",)): ["g", "c", "submit", "e"],
    ("3", ("b", "g")): ["submit", "c", "submit", "a"],
    ("4", ()): ["d", "b", "d", "c"],  # the expert's own action first: IPR's estimate of it is reused
    ("4", ("d",)): ["a", "submit", "g", "c"],
}
# The first word of each rollout from a state (then submit): Q depends on N. No script leads into
# another scripted state, so rollout i from a state is the same draw in every run (as a seed makes it).
SCRIPTS = {
    ("1", ()): ["e", "b", "g"], ("2", ()): ["d", "e", "b"],
    ("1", ("a",)): ["d", "b", "a"], ("1", ("c",)): ["c", "g", "c"], ("1", ("d",)): ["b", "d", "g"],
    ("1", ("c", "b")): ["d", "g", "b"], ("1", ("c", "d")): ["d", "d", "a"], ("1", ("c", "e")): ["g", "a", "a"],
    ("2", ("c",)): ["c", "c", "g"], ("2", ("g",)): ["g", "e", "g"], ("2", ("g", "a")): ["a", "g", "d"],
    ("3", ()): ["c", "g", "c"], ("3", ("a",)): ["g", "b", "d"], ("3", ("e",)): ["b", "c", "g"],
    ("3", ("d",)): ["d", "a", "g"], ("3", ("b",)): ["d", "a", "d"], ("3", ("b", "g")): ["b", "d", "a"],
    ("3", ("b", "c")): ["c", "g", "a"], ("3", ("b", "e")): ["a", "b", "d"],
}


def test_no_script_leads_into_another():
    assert not [(state, word) for state, words in SCRIPTS.items() for word in words
                if (state[0], state[1] + (word,)) in SCRIPTS]


@pytest.fixture(autouse=True)
def toy_tasks():
    TASKS.clear()
    toy_task("1", REWARDS, expert=["c", "d"])
    toy_task("2", REWARDS, expert=["g"])
    toy_task("3", REWARDS, expert=["b", "g"])
    toy_task("4", REWARDS, expert=["d"])
    yield
    TASKS.clear()


def explore_toy(out, **settings):
    settings = {"anchor": "expert", **settings} if settings.get("strategy") != "ipr" else settings
    config = ExploreConfig(env="toy", model="scripted", output=out, temperature=EXPLORE_T, rollout_temperature=ROLLOUT_T,
                           icl_shots=0, **settings)
    explore(config, policy=ScriptedPolicy(CANDIDATES, SCRIPTS))
    # The lines as written, but for the settings digest each carries (replay_from is one of the settings).
    read = lambda name: [{k: v for k, v in json.loads(line).items() if k != "settings"}  # noqa: E731
                         for line in (out / name).read_text().splitlines()]
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
    exported = replayed_pairs(tmp_path / "recording", replayed, settings)
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


def without_timings(records):
    return [{k: v for k, v in record.items() if k != "wall_s"} | {"steps": [
        {k: v for k, v in step.items() if k != "wall_s"} for step in record["steps"]]} for record in records]


# A replayed exploration keeps N (its costs are counted per rollout) and continues where nothing rises.
FOLDER_SETTINGS = [s for s in SETTINGS if s.rollouts == 3 and s.on_no_rise == "continue"]


@pytest.mark.parametrize("settings", FOLDER_SETTINGS, ids=str)
def test_a_replayed_exploration_folder_equals_the_explored_one(tmp_path, recording, settings):
    """`replay_from`: walks, steps, pairs and statistics as running the settings writes them, field for
    field (costs per candidate and bar included), but for timings."""
    explored_and_replayed_alike(tmp_path, strategy=settings.strategy, max_candidates=settings.max_candidates,
                                rollouts=settings.rollouts, margin=settings.margin, rise_at_max=settings.rise_at_max,
                                prev0=settings.prev0)


def explored_and_replayed_alike(tmp_path, **settings):
    """Explore `settings` and replay them from tmp_path/recording: the same folder but for timings and
    `replayed_from`. Returns the explored folder's statistics and steps."""
    stats, walks, steps = explore_toy(tmp_path / "run", **settings)
    replayed_stats, replayed_walks, replayed_steps = explore_toy(tmp_path / "replayed", replay_from=tmp_path / "recording",
                                                                 **settings)
    assert without_timings(replayed_walks) == without_timings(walks)
    assert without_timings([{"steps": replayed_steps}]) == without_timings([{"steps": steps}])
    # Record for record (the lines' settings digests differ: replay_from is one of the folder's settings).
    assert read_pairs(tmp_path / "replayed") == read_pairs(tmp_path / "run")
    assert replayed_stats.pop("replayed_from") == str(tmp_path / "recording")
    assert replayed_stats.pop("wall_seconds") is None and stats.pop("wall_seconds") > 0
    assert replayed_stats == stats
    return stats, steps


def test_the_folder_grid_covers_the_bar_cases(tmp_path, recording):
    """Among the settings above: bars reused in both, paid in both, and paid only by the replay."""
    _, steps = recording
    recorded = {(s["task_id"], s["step"]): s["bar_rollouts"] for s in steps}
    cases = set()
    for settings in FOLDER_SETTINGS:
        for record in replay(steps, settings, spec("toy").reward_range):
            for step in record["steps"][1:]:
                cases.add((recorded[(step["task_id"], step["step"])] > 0, step["bar_rollouts"] > 0))
    assert cases == {(False, False), (True, True), (False, True)}


def test_a_replay_that_would_differ_from_running_is_refused(tmp_path, recording):
    from rro.config import ConfigError

    def refused(match, **settings):
        with pytest.raises(ConfigError, match=match):
            explore_toy(tmp_path / f"refused-{len(list(tmp_path.iterdir()))}", replay_from=tmp_path / "recording",
                        **{"strategy": "rising", "max_candidates": 2, "rollouts": 3, **settings})

    refused("other settings: rollouts: 3 \\(recording\\) vs 2", rollouts=2)
    refused("other settings: max_steps", max_steps=3)
    refused("on_no_rise = 'continue'", on_no_rise="stop")
    refused("adaptive = false", adaptive=True)
    refused("max_candidates 5 > the recording's 4", max_candidates=5)
    refused("explored other tasks", limit=1)
    with pytest.raises(ValueError, match="replays expert-anchored explorations only"):
        ExploreConfig(env="toy", anchor="policy", replay_from=tmp_path / "recording", output=tmp_path / "x")


@pytest.mark.parametrize("tau", [0.0, 0.5])
def test_a_replayed_ipr_folder_equals_the_explored_one(tmp_path, recording, tau):
    """IPR from a fixed, expert-anchored recording: its candidate 0 and next bar at each expert prefix,
    costs as IPR pays them (the expert's exact submit at the end; a candidate that took the expert's
    action a cache hit), field for field as running ipr writes them but for timings."""
    stats, steps = explored_and_replayed_alike(tmp_path, strategy="ipr", rollouts=3, tau=tau)
    # the cases that cost differently: a reused bar, a cache hit on the expert's action, exact submits
    _, recorded = recording
    assert any(s["bar_rollouts"] == 0 for s in recorded if s["step"] > 0)
    assert any(s["cache_hits"] and not s["exact"] for s in steps) and any(s["exact"] for s in steps)
    assert 0 < stats["pairs"] < stats["steps"]


def test_ipr_is_not_replayed_from_a_walk_that_did_not_submit(tmp_path):
    from rro.config import ConfigError

    explore_toy(tmp_path / "short", strategy="fixed", max_candidates=2, rollouts=3, max_steps=1)
    with pytest.raises(ConfigError, match="task 1: the expert's walk ended 'max_steps', not by submitting"):
        explore_toy(tmp_path / "ipr", strategy="ipr", rollouts=3, max_steps=1, replay_from=tmp_path / "short")
    with pytest.raises(ValueError, match="cannot replay outcome"):
        ExploreConfig(env="toy", strategy="outcome", replay_from=tmp_path / "short", output=tmp_path / "x")


def _without_new_fields(record):
    """A record less what records gained after the committed one was written (the version, and the
    step's bar and chosen candidate, which its reader derives)."""
    if isinstance(record, dict):
        return {k: _without_new_fields(v) for k, v in record.items()
                if k != "version" and not (k in ("bar", "chosen") and "candidates" in record)}
    if isinstance(record, list):
        return [_without_new_fields(v) for v in record]
    return record


def test_the_committed_replay_is_replayed_identically(rro_home, tmp_path):
    """docs/results/compare-large's rising-expert exploration was replayed from its fixed-expert one:
    replaying it again today gives the same walks, steps, pairs and statistics, field for field."""
    from pathlib import Path

    from rro.explore.records import read_pairs, read_steps, read_walks

    record = Path(__file__).parent.parent / "docs" / "results" / "compare-large" / "record"
    committed = record / "rising-expert" / "iter1" / "explore"
    saved = json.loads((committed / "config.json").read_text())
    config = ExploreConfig(**{**saved, "replay_from": record / "fixed-expert" / "iter1" / "explore",
                              "output": tmp_path / "replayed"})
    stats = explore(config)
    for read in (read_walks, read_steps, read_pairs):
        assert _without_new_fields(read(tmp_path / "replayed")) == _without_new_fields(read(committed))
    expected = json.loads((committed / "stats.json").read_text())
    assert stats.pop("replayed_from") == str(config.replay_from) and expected.pop("replayed_from")
    assert stats == expected and stats["pairs"] == 88 and stats["steps"] == 890
