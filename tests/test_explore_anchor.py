"""The ceiling rule (`rise_at_max`) and expert-anchored exploration (`anchor = "expert"`), pinned
on the toy environment (tests/toy.py: Q(s, word) = reward[word] when rollouts submit at once)."""

import json

import pytest

from rro.config import ConfigError, ExploreConfig, load_config
from rro.explore import explore
from rro.rollout import run_expert_episode
from rro.envs.base import spec
from tests.toy import EXPLORE_T, ROLLOUT_T, TASKS, ScriptedPolicy, toy_task

REWARDS = {"a": -0.5, "b": 0.0, "c": 0.4, "d": 0.8, "e": 0.395}
WITH_MAX = {"f": 1.0, "c": 0.4, "a": -0.5, "p": 0.0}  # f reaches the top of the toy's reward range [-1, 1]


@pytest.fixture(autouse=True)
def fresh_toy_tasks():
    TASKS.clear()
    yield
    TASKS.clear()


def run(out, candidates, rollout_scripts=None, **settings):
    settings.setdefault("rollouts", 2)
    config = ExploreConfig(env="toy", model="scripted", output=out, temperature=EXPLORE_T,
                           rollout_temperature=ROLLOUT_T, icl_shots=0, **settings)
    stats = explore(config, policy=ScriptedPolicy(candidates, rollout_scripts))
    walks = [json.loads(line) for line in (out / "walks.jsonl").read_text().splitlines()]
    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    return stats, walks, pairs


def word(text):
    return "submit" if text.endswith("submit") else text.split("```sql\n")[1].split("\n")[0]


def words(pair):
    return word(pair["chosen"][0]["content"]), word(pair["rejected"][0]["content"])


# --- the ceiling -------------------------------------------------------------------------------

# V(s0) = 1.0 (both rollouts from the start take f, then submit); every candidate is worth 1.0 but c.
AT_THE_TOP = {("1", ()): ["f", "c", "f"], ("1", ("f",)): ["submit"] * 3}
V_S0_AT_THE_TOP = {("1", ()): ["f", "f"]}


def test_without_the_ceiling_nothing_rises_above_the_maximum(tmp_path):
    toy_task("1", WITH_MAX)
    stats, (walk,), pairs = run(tmp_path, AT_THE_TOP, V_S0_AT_THE_TOP, max_candidates=3, rise_at_max=False)
    assert walk["values"] == [1.0, 1.0, 1.0]
    assert [s["candidates"] for s in walk["steps"]] == [3, 3]  # f ties with V(s0) = 1.0: all K drawn
    assert [s["rose"] for s in walk["steps"]] == [False, False]
    assert [words(p) for p in pairs] == [("f", "c")]
    assert stats["rollouts"] == 2 + 4 + 1 and stats["rising_rate"] == 0.0  # V(s0), f and c, one exact submit
    assert stats["rise_at_max"] is False and stats["anchor"] == "policy"


def test_with_the_ceiling_a_candidate_at_the_maximum_rises(tmp_path):
    toy_task("1", WITH_MAX)
    assert ExploreConfig.model_fields["rise_at_max"].default is True  # on unless turned off
    stats, (walk,), pairs = run(tmp_path, AT_THE_TOP, V_S0_AT_THE_TOP, max_candidates=3)
    assert walk["values"] == [1.0, 1.0, 1.0]
    assert [s["candidates"] for s in walk["steps"]] == [1, 1]
    assert [s["rose"] for s in walk["steps"]] == [True, True]
    assert pairs == []  # the first candidate rose: nothing was tried before it
    assert walk["end"] == "submitted" and walk["reward"] == 1.0
    assert stats["rollouts"] == 2 + 2 + 1 and stats["rising_rate"] == 1.0 and stats["rise_at_max"] is True


def test_fixed_with_the_ceiling_still_draws_k_and_reports_the_rise(tmp_path):
    toy_task("1", WITH_MAX)
    _, (walk,), pairs = run(tmp_path, AT_THE_TOP, V_S0_AT_THE_TOP, strategy="fixed", max_candidates=3,
                            rise_at_max=True)
    assert [s["candidates"] for s in walk["steps"]] == [3, 3]
    assert [s["rose"] for s in walk["steps"]] == [True, True]
    assert [words(p) for p in pairs] == [("f", "c")]


@pytest.mark.parametrize("rise_at_max", [False, True])
def test_the_ceiling_changes_nothing_below_the_maximum(tmp_path, rise_at_max):
    toy_task("1", REWARDS)  # best value 0.8 < 1.0: the same walk as test_explore's first test
    candidates = {("1", ()): ["a", "b", "c"], ("1", ("c",)): ["c", "submit", "d"],
                  ("1", ("c", "d")): ["submit", "submit", "submit"]}
    _, (walk,), pairs = run(tmp_path, candidates, prev0="zero", max_candidates=3, rise_at_max=rise_at_max)
    assert [s["candidates"] for s in walk["steps"]] == [3, 3, 3]
    assert [s["rose"] for s in walk["steps"]] == [True, True, False]
    assert [words(p) for p in pairs] == [("c", "a"), ("c", "b"), ("d", "c"), ("d", "submit")]
    assert walk["values"] == [0.0, 0.4, 0.8, 0.8]


@pytest.mark.parametrize("rise_at_max", [False, True])
def test_adaptive_budget_keeps_rolling_out_a_candidate_that_can_reach_the_ceiling(tmp_path, rise_at_max):
    toy_task("1", WITH_MAX)
    candidates = {("1", ()): ["p"], ("1", ("p",)): ["submit"]}
    scripts = {("1", ()): ["f"] * 3, ("1", ("p",)): ["f"] * 3}  # V(s0) = 1.0 and Q(s0, p) = 1.0
    _, (walk,), _ = run(tmp_path, candidates, scripts, rollouts=3, max_candidates=1, adaptive=True,
                        rise_at_max=rise_at_max)
    first = walk["steps"][0]
    assert first["rose"] is rise_at_max and first["q_values"] == [1.0]
    # With the ceiling, p may rise until a rollout falls short of 1.0: all 3 run, none is saved.
    # Without it, p cannot exceed V(s0) = 1.0, stops after one rollout, and is topped up to 3
    # because nothing rose (the best must be picked exactly): the same 3 rollouts either way.
    assert first["rollouts"] == 3 and first["rollouts_saved"] == 0


# --- expert-anchored exploration --------------------------------------------------------------


def test_expert_anchor_explores_the_expert_prefixes_and_bars_by_the_expert_action(tmp_path):
    toy_task("1", REWARDS, expert=["c", "d"])  # the expert: c, d, submit
    candidates = {
        ("1", ()): ["a", "b", "d"],  # bar 0 (prev0 zero): -0.5, 0.0 (a tie), 0.8 rises
        ("1", ("c",)): ["submit", "d"],  # bar Q(s0, c) = 0.4: submit is 0.4 (a tie), d 0.8 rises
        ("1", ("c", "d")): ["submit"] * 3,  # bar Q(s1, d) = 0.8: submit 0.8 never rises
    }
    stats, (walk,), pairs = run(tmp_path, candidates, prev0="zero", max_candidates=3, anchor="expert")
    assert [word(t) for t in walk["turns"]] == ["c", "d", "submit"]  # the expert's path, not the chosen d
    assert walk["values"] == [0.0, 0.4, 0.8]
    assert [s["prev_value"] for s in walk["steps"]] == [0.0, 0.4, 0.8]
    assert [s["candidates"] for s in walk["steps"]] == [3, 2, 3]
    assert [s["rose"] for s in walk["steps"]] == [True, True, False]
    assert [words(p) for p in pairs] == [("d", "a"), ("d", "b"), ("d", "submit")]
    assert [p["step"] for p in pairs] == [0, 0, 1]
    assert [len(p["prompt"]) for p in pairs] == [1, 1, 3]  # the task, then the expert's c and its observation
    assert walk["end"] == "submitted" and walk["reward"] == 0.8
    # Step 1 pays for its bar Q(s0, c) (2 rollouts) + submit (1, exact) + d (2); step 2's bar
    # Q(s1, d) was d's estimate at step 1: a cache hit, like the two repeated submits.
    assert [s["rollouts"] for s in walk["steps"]] == [6, 5, 1]
    assert [s["bar_rollouts"] for s in walk["steps"]] == [0, 2, 0]
    assert [s["cache_hits"] for s in walk["steps"]] == [0, 0, 3]
    assert {s["anchor"] for s in walk["steps"]} == {p["anchor"] for p in pairs} == {"expert"}
    assert stats["anchor"] == "expert" and stats["rollouts"] == 12 and stats["pairs"] == 3


def test_fixed_with_the_expert_anchor_draws_k_and_follows_the_expert(tmp_path):
    toy_task("1", REWARDS, expert=["c", "d"])
    candidates = {("1", ()): ["d", "a"], ("1", ("c",)): ["submit", "d"], ("1", ("c", "d")): ["submit", "submit"]}
    _, (walk,), pairs = run(tmp_path, candidates, strategy="fixed", prev0="zero", max_candidates=2, anchor="expert")
    assert [word(t) for t in walk["turns"]] == ["c", "d", "submit"]
    assert [s["candidates"] for s in walk["steps"]] == [2, 2, 2]
    assert [s["rose"] for s in walk["steps"]] == [True, True, False]
    assert [words(p) for p in pairs] == [("d", "a"), ("d", "submit")]
    assert walk["values"] == [0.0, 0.4, 0.8]


def test_expert_anchor_with_on_no_rise_stop(tmp_path):
    toy_task("1", REWARDS, expert=["c", "d"])
    candidates = {("1", ()): ["d"], ("1", ("c",)): ["submit", "b"]}
    _, (walk,), pairs = run(tmp_path, candidates, prev0="zero", max_candidates=2, anchor="expert",
                            on_no_rise="stop")
    assert [s["candidates"] for s in walk["steps"]] == [1, 2]
    assert walk["end"] == "no_rise" and [word(t) for t in walk["turns"]] == ["c"]
    assert [words(p) for p in pairs] == [("submit", "b")]  # the best of the step, though nothing rose


@pytest.mark.parametrize("rise_at_max", [False, True])
def test_expert_anchor_with_prev0_value_and_the_ceiling(tmp_path, rise_at_max):
    toy_task("1", WITH_MAX, expert=["f"])
    candidates = {("1", ()): ["c", "f"], ("1", ("f",)): ["submit", "submit"]}
    scripts = {("1", ()): ["c", "c"]}  # V(s0) = 0.4
    _, (walk,), pairs = run(tmp_path, candidates, scripts, max_candidates=2, anchor="expert", rise_at_max=rise_at_max)
    assert walk["initial_cost"]["rollouts"] == 2
    assert walk["values"] == [0.4, 1.0]  # V(s0), then Q(s0, f) (f's own estimate: free)
    assert [s["candidates"] for s in walk["steps"]] == ([2, 1] if rise_at_max else [2, 2])
    assert [s["rose"] for s in walk["steps"]] == [True, rise_at_max]
    assert [words(p) for p in pairs] == [("f", "c")]
    assert walk["end"] == "submitted" and walk["reward"] == 1.0


def test_expert_anchor_applies_to_walks_only(tmp_path):
    with pytest.raises(ConfigError, match="anchor = 'expert' applies to the rising and fixed strategies"):
        load_config(ExploreConfig, None, strategy="ipr", anchor="expert", output=str(tmp_path))
    with pytest.raises(ConfigError, match="anchor"):
        load_config(ExploreConfig, None, anchor="expert-ish", output=str(tmp_path))


def test_an_output_folder_holds_one_anchor_and_one_ceiling_rule(tmp_path):
    toy_task("1", REWARDS)
    candidates = {("1", ()): ["d"], ("1", ("d",)): ["submit"]}
    run(tmp_path, candidates, prev0="zero", max_candidates=1, rise_at_max=False)
    for change in ({"anchor": "expert"}, {"rise_at_max": True}):
        with pytest.raises(ConfigError, match=next(iter(change))):
            run(tmp_path, candidates, prev0="zero", max_candidates=1, **{"rise_at_max": False, **change})
    # A folder saved before these settings existed ran with the policy anchor and a strict rise: it
    # resumes with those (the anchor's default; not the ceiling rule's, which changed since).
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["anchor"], saved["rise_at_max"]
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match="rise_at_max: False -> True"):
        run(tmp_path, candidates, prev0="zero", max_candidates=1)
    stats, _, _ = run(tmp_path, candidates, prev0="zero", max_candidates=1, rise_at_max=False)
    assert stats["tasks"] == 1


def test_expert_anchor_on_intercode_sql_walks_the_expert_with_the_tiny_model(tmp_path, tiny_policy):
    config = ExploreConfig(model="tiny-random", limit=2, rollouts=1, max_candidates=2, max_new_tokens=8,
                           dtype="float32", anchor="expert", output=tmp_path / "out")
    stats = explore(config, policy=tiny_policy)
    walks = [json.loads(line) for line in (tmp_path / "out" / "walks.jsonl").read_text().splitlines()]
    env_spec, env = spec("intercode-sql"), config.make_env()
    for task, walk in zip(config.tasks(), walks):
        expert = run_expert_episode(env_spec, env, task, config.max_steps)
        assert walk["turns"] == [step.turn for step in expert.steps]
        assert walk["reward"] == expert.reward == 1.0 and walk["end"] == "submitted"
        assert len(walk["steps"]) == len(expert.steps)  # one explored state per expert action
        assert all(s["anchor"] == "expert" and 1 <= s["candidates"] <= 2 for s in walk["steps"])
    env.close()
    assert stats["anchor"] == "expert" and stats["tasks"] == 2


# --- cost against competence (rro.report) ---------------------------------------------------------


def test_competence_points_put_the_cost_of_each_exploration_against_its_mean_v_s0(tmp_path):
    from rro.report import competence_points, write_competence_plot

    toy_task("1", WITH_MAX)
    weak = run(tmp_path / "weak", {("1", ()): ["a", "c"], ("1", ("c",)): ["submit"] * 2}, {("1", ()): ["c", "a"]},
               max_candidates=2, rise_at_max=False)  # V(s0) = (0.4 - 0.5) / 2 = -0.05
    strong = run(tmp_path / "strong", AT_THE_TOP, V_S0_AT_THE_TOP, max_candidates=3)  # V(s0) = 1.0
    points = write_competence_plot([tmp_path / "weak", tmp_path / "strong"], tmp_path / "report")
    assert [p["mean_v0"] for p in points] == [pytest.approx(-0.05), 1.0]
    assert [p["candidates_per_step"] for p in points] == [weak[0]["candidates_per_step"]["mean"], 1.0]
    assert [p["rollouts_per_pair"] for p in points] == [weak[0]["rollouts_per_pair"], None]  # no pair at the top
    assert [p["rise_at_max"] for p in points] == [False, True] and strong[0]["pairs"] == 0
    assert json.loads((tmp_path / "report" / "competence.json").read_text()) == points
    assert (tmp_path / "report" / "competence.png").stat().st_size > 0
    run(tmp_path / "zero", {("1", ()): ["f"], ("1", ("f",)): ["submit"]}, prev0="zero", max_candidates=1)
    with pytest.raises(ValueError, match="prev0 = 'value'"):
        competence_points([tmp_path / "zero"])

    # The same through `rro report --competence` (no pipeline run needed), and its table.
    from typer.testing import CliRunner

    from rro.cli import app

    result = CliRunner().invoke(app, ["report", "--competence", str(tmp_path / "weak"), "--competence",
                                      str(tmp_path / "strong"), "-o", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cli" / "competence.json").read_text()) == points
    assert "| on | 1.00 | 1.00 | – | 0 |" in result.output  # the strong model's row
    result = CliRunner().invoke(app, ["report", "-o", str(tmp_path / "nothing")])
    assert result.exit_code != 0 and "name at least one run directory" in result.output


def test_two_sweeps_plot_together_without_joining_their_checkpoints(tmp_path):
    from rro.report import competence_series, plot_competence

    def point(model, family, strategy, v0):
        return {"model": model, "family": family, "strategy": strategy, "anchor": "policy", "rise_at_max": True,
                "mean_v0": v0, "candidates_per_step": 5 - 4 * v0, "rollouts_per_pair": None if v0 == 0 else 10.0,
                "pairs": 0 if v0 == 0 else 3, "tasks": 8, "rollouts": 40}

    points = [point("small/sft", "small", "rising", 0.7), point("small/base", "small", "rising", 0.0),
              point("large/base", "large", "rising", 0.3), point("large/sft", "large", "fixed", 0.5),
              point("small/sft", "small", "fixed", 0.6)]
    series = competence_series(points)
    assert list(series) == [("rising, policy anchor, ceiling", "small"), ("rising, policy anchor, ceiling", "large"),
                            ("fixed, policy anchor, ceiling", "large"), ("fixed, policy anchor, ceiling", "small")]
    small_rising = series[("rising, policy anchor, ceiling", "small")]
    assert [p["model"] for p in small_rising] == ["small/base", "small/sft"]  # joined in order of competence
    assert series[("rising, policy anchor, ceiling", "large")] == [points[2]]  # not joined to the small model's
    assert plot_competence(points, tmp_path) == points
    assert json.loads((tmp_path / "competence.json").read_text()) == points
    assert (tmp_path / "competence.png").stat().st_size > 0


def test_expert_anchor_bar_is_exact_under_the_adaptive_budget(tmp_path):
    toy_task("1", {"hi": 1.0, "lo": -1.0, "c": 0.0, "d": 0.0}, expert=["c"])
    candidates = {("1", ()): ["c", "d"], ("1", ("c",)): ["submit"]}
    # c (the expert's action) stops after 2 rollouts (at most -1/3 then: cannot rise above 0); d rises.
    scripts = {("1", ("c",)): ["lo", "lo", "hi"], ("1", ("d",)): ["hi"] * 3}
    _, (walk,), pairs = run(tmp_path, candidates, scripts, rollouts=3, max_candidates=2, prev0="zero",
                            adaptive=True, anchor="expert")
    # c's estimate is the next bar, so it is topped up to all 3 rollouts: Q(s0, c) = -1/3, not -1.
    assert walk["values"] == [0.0, pytest.approx(-1 / 3)]
    assert walk["steps"][0]["rollouts"] == 6 and walk["steps"][0]["rollouts_saved"] == 0
    assert [words(p) for p in pairs] == [("d", "c")] and pairs[0]["q_rejected"] == pytest.approx(-1 / 3)
    assert [s["rose"] for s in walk["steps"]] == [True, True]  # submit after c: 0.0 > -1/3
