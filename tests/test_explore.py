"""Exploration semantics on a toy environment with known values (see toy.py), then InterCode-SQL."""

import json

import pytest
from typer.testing import CliRunner

from rro.cli import app
from rro.config import ExploreConfig
from rro.explore import explore
from tests.toy import EXPLORE_T, ROLLOUT_T, TASKS, ScriptedPolicy, toy_task

REWARDS = {"a": -0.5, "b": 0.0, "c": 0.4, "d": 0.8, "e": 0.395}


@pytest.fixture(autouse=True)
def fresh_toy_tasks():
    TASKS.clear()
    yield
    TASKS.clear()


def run(tmp_path, candidates, rollout_scripts=None, **settings):
    settings.setdefault("rollouts", 2)
    config = ExploreConfig(env="toy", model="scripted", output=tmp_path / "out",
                           temperature=EXPLORE_T, rollout_temperature=ROLLOUT_T, icl_shots=0, **settings)
    policy = ScriptedPolicy(candidates, rollout_scripts)
    stats = explore(config, policy=policy)
    walks = [json.loads(line) for line in (tmp_path / "out" / "walks.jsonl").read_text().splitlines()]
    pairs = [json.loads(line) for line in (tmp_path / "out" / "pairs.jsonl").read_text().splitlines()]
    return stats, walks, pairs, policy


def words(pair):
    def word(message):
        text = message["content"]
        return "submit" if text.endswith("submit") else text.split("```sql\n")[1].split("\n")[0]

    return word(pair["chosen"][0]), word(pair["rejected"][0])


def test_rising_stops_at_the_first_rise_and_pairs_the_lower_candidates(tmp_path):
    toy_task("1", REWARDS)
    candidates = {
        ("1", ()): ["a", "b", "c"],  # -0.5, 0.0 (a tie with prev 0 is not a rise), 0.4 rises
        ("1", ("c",)): ["c", "submit", "d"],  # 0.4, 0.4 (exact), 0.8 rises
        ("1", ("c", "d")): ["submit", "submit", "submit"],  # 0.8 = prev: no rise; equal actions
    }
    stats, (walk,), pairs, _ = run(tmp_path, candidates, prev0="zero", max_candidates=3)
    assert [s["candidates"] for s in walk["steps"]] == [3, 3, 3]
    assert [s["rose"] for s in walk["steps"]] == [True, True, False]
    assert [words(p) for p in pairs] == [("c", "a"), ("c", "b"), ("d", "c"), ("d", "submit")]
    assert [p["step"] for p in pairs] == [0, 0, 1, 1]
    assert walk["values"] == [0.0, 0.4, 0.8, 0.8]
    assert walk["end"] == "submitted" and walk["reward"] == 0.8
    # Costs: step 0 = three fresh candidates x 2 rollouts; step 1 = c (new state) 2 + submit 1 exact + d 2;
    # step 2 = one exact submit, then two cache hits.
    assert [s["rollouts"] for s in walk["steps"]] == [6, 5, 1]
    assert [s["cache_hits"] for s in walk["steps"]] == [0, 0, 2]
    assert [s["exact"] for s in walk["steps"]] == [0, 1, 3]  # terminal candidates, cached or not
    assert stats["candidates_per_step"] == {"mean": 3.0, "max": 3, "histogram": {"3": 3}}
    assert stats["rising_rate"] == pytest.approx(2 / 3)
    assert stats["pairs"] == 4 and stats["rollouts"] == 12


def test_rising_samples_one_candidate_when_the_first_rises(tmp_path):
    toy_task("1", REWARDS)
    candidates = {("1", ()): ["c"], ("1", ("c",)): ["submit", "d"], ("1", ("c", "d")): ["submit"] * 5}
    stats, (walk,), pairs, policy = run(tmp_path, candidates, prev0="zero")
    assert [s["candidates"] for s in walk["steps"]] == [1, 2, 5]
    assert [words(p) for p in pairs] == [("d", "submit")]


def test_fixed_always_draws_k_and_keeps_the_best(tmp_path):
    toy_task("1", REWARDS)
    candidates = {("1", ()): ["c", "a", "b"], ("1", ("c",)): ["d", "submit", "c"],
                  ("1", ("c", "d")): ["submit"] * 3}
    stats, (walk,), pairs, _ = run(tmp_path, candidates, strategy="fixed", prev0="zero", max_candidates=3)
    assert [s["candidates"] for s in walk["steps"]] == [3, 3, 3]
    assert [s["rose"] for s in walk["steps"]] == [True, True, False]  # rising rate is still reported
    assert [words(p) for p in pairs] == [("c", "a"), ("c", "b"), ("d", "submit"), ("d", "c")]
    assert walk["values"] == [0.0, 0.4, 0.8, 0.8]


def test_margin_raises_the_bar(tmp_path):
    toy_task("1", REWARDS)
    candidates = {("1", ()): ["c", "d"], ("1", ("d",)): ["submit"] * 5}
    _, (walk,), pairs, _ = run(tmp_path, candidates, prev0="zero", margin=0.5, max_candidates=2)
    assert walk["steps"][0]["candidates"] == 2 and walk["steps"][0]["rose"]  # 0.4 <= 0.5 < 0.8
    assert [words(p) for p in pairs][0] == ("d", "c")


def test_pair_gap_drops_near_ties(tmp_path):
    toy_task("1", REWARDS)
    candidates = {("1", ()): ["e", "c"], ("1", ("c",)): ["submit"] * 2}
    _, (walk,), pairs, _ = run(tmp_path, candidates, prev0="zero", margin=0.5, max_candidates=2)
    assert walk["steps"][0]["q_values"] == [0.395, 0.4] and not walk["steps"][0]["rose"]
    assert pairs == []  # 0.4 - 0.395 < pair_gap 0.01


def test_on_no_rise_stop_ends_the_task(tmp_path):
    toy_task("1", REWARDS)
    candidates = {("1", ()): ["a", "b"]}
    _, (walk,), pairs, _ = run(tmp_path, candidates, prev0="zero", max_candidates=2, on_no_rise="stop")
    assert walk["end"] == "no_rise" and len(walk["steps"]) == 1 and walk["turns"] == []
    assert [words(p) for p in pairs] == [("b", "a")]


def test_prev0_value_rolls_out_the_start_state(tmp_path):
    toy_task("1", REWARDS)
    candidates = {("1", ()): ["c"], ("1", ("c",)): ["submit"] * 5}
    stats, (walk,), _, policy = run(tmp_path, candidates, prev0="value")
    assert walk["initial_cost"]["rollouts"] == 2  # V(s0): N rollouts, all submitting at once -> 0
    assert walk["values"][0] == 0.0
    assert policy.calls[0] == (ROLLOUT_T, 2)


def test_tasks_share_policy_calls(tmp_path):
    toy_task("1", REWARDS)
    toy_task("2", REWARDS)
    candidates = {("1", ()): ["c"], ("1", ("c",)): ["submit"], ("2", ()): ["d"], ("2", ("d",)): ["submit"]}
    _, walks, _, policy = run(tmp_path, candidates, prev0="zero", on_no_rise="continue", max_candidates=1)
    exploration_calls = [size for temperature, size in policy.calls if temperature == EXPLORE_T]
    assert exploration_calls[0] == 2  # both tasks' first candidates in one call


def test_ipr_pairs_expert_over_worse_policy_actions(tmp_path):
    toy_task("1", REWARDS)  # the expert takes d (0.8), then submits
    candidates = {("1", ()): ["a"], ("1", ("d",)): ["submit"]}
    stats, (walk,), pairs, _ = run(tmp_path, candidates, strategy="ipr", tau=0.1)
    assert [words(p) for p in pairs] == [("d", "a")]  # at the second step both submit: no pair
    assert pairs[0]["q_chosen"] == 0.8 and pairs[0]["q_rejected"] == -0.5
    assert walk["end"] == "submitted" and walk["reward"] == 0.8


def test_outcome_pairs_whole_trajectories(tmp_path):
    toy_task("1", REWARDS)
    candidates = {("1", ()): ["c"], ("1", ("c",)): ["submit"]}
    _, (walk,), (pair,), _ = run(tmp_path, candidates, strategy="outcome", tau=0.1)
    assert (pair["q_chosen"], pair["q_rejected"]) == (0.8, 0.4)
    assert [m["role"] for m in pair["chosen"]] == ["assistant", "user", "assistant"]
    assert pair["prompt"][0]["role"] == "user" and len(pair["prompt"]) == 1


def test_interrupted_run_resumes_without_duplicates(tmp_path, monkeypatch):
    for task_id in "1234":
        toy_task(task_id, REWARDS)
    candidates = {}
    for task_id in "1234":
        candidates[(task_id, ())] = ["a", "c"]
        candidates[(task_id, ("c",))] = ["d"]
        candidates[(task_id, ("c", "d"))] = ["submit"] * 5
    full_stats, _, full_pairs, _ = run(tmp_path / "full", candidates, prev0="zero", tasks_per_batch=1)

    import rro.explore.run as explore_run

    real_walk, calls = explore_run.walk_tasks, []

    def crash_on_third_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_walk(*args, **kwargs)

    monkeypatch.setattr(explore_run, "walk_tasks", crash_on_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", candidates, prev0="zero", tasks_per_batch=1)
    assert len((tmp_path / "cut" / "out" / "walks.jsonl").read_text().splitlines()) == 2
    monkeypatch.setattr(explore_run, "walk_tasks", real_walk)
    resumed_stats, walks, resumed_pairs, _ = run(tmp_path / "cut", candidates, prev0="zero", tasks_per_batch=1)
    assert sorted(w["task_id"] for w in walks) == ["1", "2", "3", "4"]
    assert resumed_pairs == full_pairs
    without_time = lambda stats: {k: v for k, v in stats.items() if k != "wall_seconds"}  # noqa: E731
    assert without_time(resumed_stats) == without_time(full_stats)
    # A finished run is a no-op.
    again, walks_again, _, policy = run(tmp_path / "cut", candidates, prev0="zero", tasks_per_batch=1)
    assert len(walks_again) == 4 and policy.calls == []


@pytest.mark.parametrize("strategy", ["rising", "fixed", "ipr", "outcome"])
def test_strategies_on_intercode_sql_with_the_tiny_model(tmp_path, strategy, tiny_policy):
    out = tmp_path / strategy
    result = CliRunner().invoke(app, [
        "explore", "--strategy", strategy, "--model", "tiny-random", "--limit", "2", "--rollouts", "2",
        "--max-candidates", "2", "--max-steps", "2", "--max-new-tokens", "8", "--dtype", "float32", "-o", str(out)])
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["tasks"] == 2 and stats["strategy"] == strategy
    for line in (out / "pairs.jsonl").read_text().splitlines():
        pair = json.loads(line)
        assert {"prompt", "chosen", "rejected", "task_id", "step", "q_chosen", "q_rejected", "strategy"} <= set(pair)
        assert pair["chosen"][0]["role"] == "assistant" and pair["prompt"][-1]["role"] == "user"


def test_adaptive_budget_saves_rollouts_without_changing_decisions(tmp_path):
    rewards = {"p": 0.0, "r": 0.0, "hi": 1.0, "lo": -1.0, "zero": 0.0}
    toy_task("1", rewards)
    candidates = {("1", ()): ["p", "r"], ("1", ("r",)): ["p", "submit", "r"]}
    scripts = {
        ("1", ("p",)): ["lo", "lo", "zero", "hi", "hi"],  # mean 0.0: after 3, at most 0.0 -> cannot rise above 0
        ("1", ("r",)): ["hi", "hi", "hi", "lo", "zero"],  # mean 0.4: rises above 0, so it runs all 5
        ("1", ("r", "p")): ["lo"] * 5,  # bar 0.4: after 2 rollouts at most 0.2 -> stops
        ("1", ("r", "r")): ["zero"] * 5,  # after 3 at most 0.4 -> stops; nothing rises: topped up to 5
    }
    runs = {}
    for adaptive in (False, True):
        runs[adaptive] = run(tmp_path / str(adaptive), candidates, scripts, rollouts=5, max_candidates=3,
                             prev0="zero", adaptive=adaptive)
    (full_stats, (full,), full_pairs, _), (adaptive_stats, (walk,), adaptive_pairs, _) = runs[False], runs[True]
    for key in ("turns", "values", "end", "reward"):
        assert walk[key] == full[key]
    assert [words(p) for p in adaptive_pairs] == [words(p) for p in full_pairs] == [("r", "p"), ("submit", "p")]
    assert [s["candidates"] for s in walk["steps"]] == [s["candidates"] for s in full["steps"]] == [2, 3]
    assert [s["rose"] for s in walk["steps"]] == [s["rose"] for s in full["steps"]] == [True, False]
    # Step 0: p stops after 3 of 5 rollouts (its pairing with r, 0.4 above it, is certain).
    # Step 1: p and r stop early, but nothing rose, so both are topped up to pick the best exactly.
    assert [s["rollouts_saved"] for s in walk["steps"]] == [2, 0]
    assert adaptive_stats["rollouts_saved"] == 2 and full_stats["rollouts_saved"] == 0
    assert adaptive_stats["rollouts"] == full_stats["rollouts"] - 2
    assert walk["steps"][0]["q_values"] == [pytest.approx(-2 / 3), 0.4]  # the mean of the 3 rollouts run
