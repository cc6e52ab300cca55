"""Which settings identify a run, derived from the config models' fields (rro.config.run_identity):
an output folder is resumed, a pipeline stage skipped and a recording replayed only when they match."""

import pytest
from pydantic import Field

from rro.config import (ConfigError, DpoConfig, EvalConfig, ExploreConfig, PLACEMENT, RESUMABLE, guard_output_dir,
                        run_identity)
from rro.explore import explore
from rro.pipeline import _same_settings
from tests.toy import EXPLORE_T, ROLLOUT_T, TASKS, ScriptedPolicy, toy_task


@pytest.fixture(autouse=True)
def toy_tasks():
    TASKS.clear()
    toy_task("1", {"a": 0.2, "b": 0.8})
    yield
    TASKS.clear()


def explore_toy(out, **settings):
    config = ExploreConfig(env="toy", model="scripted", output=out, temperature=EXPLORE_T, rollout_temperature=ROLLOUT_T,
                           icl_shots=0, rollouts=1, max_candidates=2, **settings)
    return explore(config, policy=ScriptedPolicy({("1", ()): ["a", "b"], ("1", ("a",)): ["submit", "submit"]}))


def test_resuming_an_exploration_with_another_top_p_is_refused(tmp_path):
    explore_toy(tmp_path / "out", top_p=0.9)
    explore_toy(tmp_path / "out", top_p=0.9, tasks_per_batch=3)  # a resumable setting: a no-op rerun
    with pytest.raises(ConfigError, match=r"different settings \(top_p: 0.9 -> 1.0\)"):
        explore_toy(tmp_path / "out", top_p=1.0)


class WithANewSetting(ExploreConfig):
    """An exploration config that gained a setting: it identifies runs with no more code than its field."""

    lookahead: int = Field(default=0, description="A setting added later.")
    where: str = Field(default="here", description="A placement setting added later.", json_schema_extra=PLACEMENT)


def test_a_new_setting_guards_a_resume_a_finished_stage_and_a_replay(tmp_path):
    first = WithANewSetting(env="toy", output=tmp_path)
    guard_output_dir(first, tmp_path)
    guard_output_dir(first.model_copy(update={"where": "there"}), tmp_path)  # placement: resumes
    with pytest.raises(ConfigError, match=r"lookahead: 0 -> 1"):
        guard_output_dir(first.model_copy(update={"lookahead": 1}), tmp_path)
    saved = first.model_dump(mode="json")
    assert _same_settings(saved, first.model_copy(update={"where": "there"}))
    assert not _same_settings(saved, first.model_copy(update={"lookahead": 1}))
    # A stage saved before the setting existed ran with its default.
    assert _same_settings({k: v for k, v in saved.items() if k != "lookahead"}, first)
    assert "lookahead" in run_identity(first, replayed=True) and "where" not in run_identity(first)


def test_the_identities_of_every_command():
    explore_config = ExploreConfig(env="toy", output="x")
    resumed, replayed = set(run_identity(explore_config, resumed=True)), set(run_identity(explore_config, replayed=True))
    assert {"top_p", "temperature", "rollouts", "model", "strategy", "margin", "rise_at_max"} <= resumed
    assert not {"workers", "limit", "tasks_per_batch", "dtype", "policy_backend", "output"} & resumed
    assert resumed - replayed == {"strategy", "max_candidates", "margin", "rise_at_max", "anchor", "pair_gap", "prev0",
                                  "on_no_rise", "tau", "adaptive", "replay_from"}
    # A finished stage is tied by the resumable settings as well (a stage with another limit is another stage).
    assert {"limit", "tasks_per_batch", "dtype"} <= set(run_identity(explore_config))
    assert "top_p" in run_identity(EvalConfig(env="toy", output="x"), resumed=True)
    assert "top_p" not in run_identity(EvalConfig(env="toy", output="x", policy="expert"), resumed=True)
    dpo = DpoConfig(output="x", pairs=["p"])
    assert {"beta", "learning_rate", "model", "pairs", "limit"} <= set(run_identity(dpo, resumed=True))
    assert "output" not in run_identity(dpo, resumed=True)
    assert RESUMABLE["resumable"]
