"""`rro run` wires the commands into one resumable pipeline; `rro report` reads its runs."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from pathlib import Path

import pytest

from rro.config import ConfigError, PipelineConfig, load_config
from rro.pipeline import plan, run_pipeline
from rro.policy.hf import cpu_description, cpu_supports_bf16
from rro.report import interval, rising_by_third, write_report

TINY_RUN = """
output = "{output}"
model = "tiny-random"
strategies = ["fixed", "rising"]

[experts]
limit = 4

[sft]
limit = 4
epochs = 1
batch_size = 2
gradient_accumulation_steps = 1
precision = "fp32"
activation_checkpointing = false

[eval]
limit = 3
max_steps = 2
max_new_tokens = 12
dtype = "float32"

[explore]
limit = 2
rollouts = 1
max_candidates = 2
max_steps = 2
max_new_tokens = 12
dtype = "float32"

[dpo]
epochs = 1
precision = "fp32"
activation_checkpointing = false
"""

# Both anchors: rising-expert replays fixed-expert's candidates (samples nothing).
EXPERT_VARIANTS = """
[variants.fixed-expert]
strategy = "fixed"
anchor = "expert"

[variants.rising-expert]
strategy = "rising"
anchor = "expert"
replay_from = "fixed-expert"
"""


def test_pipeline_runs_every_stage_once_and_the_report_reads_it(tmp_path, rro_home):
    config_file = tmp_path / "run.toml"
    config_file.write_text(TINY_RUN.format(output=tmp_path / "run") + EXPERT_VARIANTS)
    config = load_config(PipelineConfig, config_file)
    results = run_pipeline(config)
    run = tmp_path / "run"
    assert [m["method"] for m in results["methods"]] == ["sft", "fixed", "rising", "fixed-expert", "rising-expert"]
    stages = [stage.name for stage in plan(config)[0]]
    assert sorted(p.stem for p in (run / "stages").glob("*.json")) == sorted(stages)
    sft_marker = json.loads((run / "stages" / "sft.json").read_text())
    assert sft_marker["seconds"] > 0 and sft_marker["cpu_seconds"] > 0 and sft_marker["load"] >= 0
    # Where it ran: a resumed run may finish on another machine.
    assert sft_marker["machine"] == {"cpu": cpu_description(), "cores": os.cpu_count(),
                                     "native_bf16": cpu_supports_bf16(), "gpu": None}
    # Both strategies start from the one SFT model and are evaluated on the same tasks.
    for strategy in ("fixed", "rising"):
        explored = json.loads((run / strategy / "iter1" / "explore" / "config.json").read_text())
        assert explored["model"] == str(run / "sft") and explored["strategy"] == strategy
        trained = json.loads((run / strategy / "iter1" / "dpo" / "rro-train.json").read_text())
        assert trained["config"]["model"] == str(run / "sft")
        pairs = (run / strategy / "iter1" / "explore" / "pairs.jsonl").read_text().splitlines()
        assert (trained["records"] == 0) == (not pairs)  # no pairs: the SFT model is kept, and says so
        if not pairs:
            assert trained["unchanged"] == "exploration found no preference pairs"
    evaluated = [{json.loads(line)["task_id"] for line in (run / path / "episodes.jsonl").read_text().splitlines()}
                 for path in ("eval-sft", "fixed/iter1/eval", "rising/iter1/eval")]
    assert evaluated[0] == evaluated[1] == evaluated[2] and len(evaluated[0]) == 3
    # rising-expert sampled nothing: it replays fixed-expert's candidates (the same ones, in order).
    replayed = json.loads((run / "rising-expert" / "iter1" / "explore" / "stats.json").read_text())
    assert replayed["replayed_from"] == str(run / "fixed-expert" / "iter1" / "explore") and replayed["wall_seconds"] is None
    steps = {name: [json.loads(line) for line in (run / name / "iter1" / "explore" / "steps.jsonl").read_text().splitlines()]
             for name in ("fixed-expert", "rising-expert")}
    assert [len(s["candidate_turns"]) for s in steps["fixed-expert"]] == [2] * len(steps["fixed-expert"])
    assert [s["candidate_turns"] for s in steps["rising-expert"]] == \
        [s["candidate_turns"][:len(r["candidate_turns"])] for s, r in zip(steps["fixed-expert"], steps["rising-expert"])]

    # A finished run is a no-op: no stage runs again.
    stamps = {path: path.stat().st_mtime_ns for path in run.rglob("*") if path.is_file()}
    run_pipeline(config)
    assert all(path.stat().st_mtime_ns == stamp for path, stamp in stamps.items() if path.name not in ("pipeline.json", "results.json"))

    # A changed stage refuses to mix with the finished one.
    changed = config.model_copy(update={"eval": {**config.eval, "limit": 2}})
    with pytest.raises(ConfigError, match="eval-sft"):
        run_pipeline(changed)

    out = tmp_path / "report"
    table = write_report([run], out, resamples=200)
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [row["method"] for row in rows] == ["sft", "fixed", "rising", "fixed-expert", "rising-expert"]
    assert rows[0]["cand_per_step_mean"] == "" and float(rows[1]["cand_per_step_mean"]) == 2.0  # fixed draws K
    assert rows[4]["explore_s"] == "" and float(rows[3]["explore_s"]) > 0  # replayed: no time measured
    for name in ("results.md", "paired.md", "cost.md", "steps.md", "candidates_per_step.png", "cost_vs_reward.png", "rising_by_third.png"):
        assert (out / name).stat().st_size > 0
    assert "fixed − sft" in table

    # A run moved elsewhere (e.g. a record committed without its weights) reports the same from there.
    moved = tmp_path / "elsewhere" / "run"
    shutil.move(run, moved)
    assert write_report([moved], tmp_path / "report-moved", resamples=200) == table

    # A run that has not finished (no results.json yet) reports the methods whose evaluation finished.
    (moved / "results.json").unlink()
    (moved / "stages" / "eval-rising-expert-1.json").unlink()
    partial = write_report([moved], tmp_path / "report-partial", resamples=200)
    assert partial.splitlines()[0] == "run has not finished: not yet in this report: rising-expert"
    assert partial.splitlines()[1:] == [line for line in table.splitlines() if "| rising-expert" not in line]
    assert "run has not finished" in (tmp_path / "report-partial" / "index.html").read_text()
    (moved / "pipeline.json").unlink()
    with pytest.raises(FileNotFoundError, match="neither results.json nor pipeline.json"):
        write_report([moved], tmp_path / "report-none", resamples=200)


def test_pipeline_config_errors_name_the_table_and_field(tmp_path):
    with pytest.raises(ConfigError, match=r"sft\.learning_rate"):
        plan(PipelineConfig(output=tmp_path, sft={"learning_rate": -1}))
    with pytest.raises(ConfigError, match=r"\[dpo\] may not set model"):
        plan(PipelineConfig(output=tmp_path, dpo={"model": "x"}))
    with pytest.raises(ConfigError, match=r"explore\.rolouts"):
        plan(PipelineConfig(output=tmp_path, explore={"rolouts": 3}))
    with pytest.raises(ConfigError, match="strategies"):
        load_config(PipelineConfig, None, output=tmp_path, strategies=["best"])


SHIPPED_CONFIGS = sorted(path.stem for path in (Path(__file__).parents[1] / "configs").glob("*.toml"))


@pytest.mark.parametrize("name", SHIPPED_CONFIGS)
def test_shipped_configs_are_valid(name):
    config = load_config(PipelineConfig, Path(__file__).parents[1] / "configs" / f"{name}.toml")
    stages, methods = plan(config)
    assert stages[0].name == "experts" and methods[0]["method"] == "sft"


def test_cost_at_matched_tokens_divides_by_exploration_tokens():
    from rro.report import cost_table

    row = {"run": "r", "tasks": 10, "ci_low": 0, "ci_high": 0, "success_rate": 0}
    rows = [{**row, "method": "sft", "avg_reward": 20.0, "generated_tokens": 0, "pairs": 0},
            {**row, "method": "fixed", "avg_reward": 26.0, "generated_tokens": 3_000_000, "pairs": 300},
            {**row, "method": "rising", "avg_reward": 23.0, "generated_tokens": 500_000, "pairs": 100}]
    lines = cost_table(rows).splitlines()
    assert len(lines) == 4  # header, rule, and no row for SFT, which explored nothing
    assert lines[2] == "| r | fixed | 3000000 | 300 | 100 | 26.0 | 6.0 | 2.0 |"
    assert lines[3] == "| r | rising | 500000 | 100 | 200 | 23.0 | 3.0 | 6.0 |"


def test_the_equal_pairs_arm_is_measured_against_its_own_sft_evaluation():
    """A run resumed on another machine may retrain SFT there: the arm's rows pair against the arm's
    own evaluation of its starting model (sft-equal), which itself pairs against the run's sft."""
    from rro.report import cost_table, paired_table

    rewards = {"sft": {0: 0.0, 1: 100.0, 2: 100.0}, "rising": {0: 100.0, 1: 100.0, 2: 100.0},
               "sft-equal": {0: 0.0, 1: 0.0, 2: 100.0}, "rising-equal": {0: 0.0, 1: 100.0, 2: 100.0}}
    lines = paired_table("r", rewards, resamples=100)
    assert [line.split("|")[2].strip() for line in lines] == ["rising − sft", "sft-equal − sft", "rising-equal − sft-equal"]
    assert "+33.3" in lines[0] and "-33.3" in lines[1] and "+33.3" in lines[2]
    row = {"run": "r", "tasks": 3, "ci_low": 0, "ci_high": 0, "success_rate": 0}
    rows = [{**row, "method": "sft", "avg_reward": 66.7, "generated_tokens": 0, "pairs": 0},
            {**row, "method": "sft-equal", "avg_reward": 33.3, "generated_tokens": 0, "pairs": 0},
            {**row, "method": "rising-equal", "avg_reward": 66.7, "generated_tokens": 1_000_000, "pairs": 5}]
    assert cost_table(rows).splitlines()[2] == "| r | rising-equal | 1000000 | 5 | 5 | 66.7 | 33.4 | 33.4 |"
    # Without the arm's own evaluation (a run recorded before it existed), METHOD-equal pairs against sft.
    del rewards["sft-equal"]
    assert paired_table("r", rewards, resamples=100)[1].split("|")[2].strip() == "rising-equal − sft"


def test_rro_is_paired_against_each_baseline_of_its_arm():
    from rro.report import rro_against_baselines

    methods = [{"method": "sft"}, {"method": "rising", "strategy": "rising"}, {"method": "fixed", "strategy": "fixed"},
               {"method": "rising-expert", "strategy": "rising"}, {"method": "ipr", "strategy": "ipr"},
               {"method": "sft-equal", "equal_pairs": True},
               {"method": "rising-equal", "strategy": "rising", "equal_pairs": True},
               {"method": "fixed-equal", "strategy": "fixed", "equal_pairs": True}]
    rewards = {m["method"]: {0: 0.0, 1: 100.0} for m in methods}
    rewards["rising"] = {0: 100.0, 1: 100.0}
    lines = rro_against_baselines("r", methods, rewards, resamples=100)
    assert [line.split("|")[2].strip() for line in lines] == [
        "rising − fixed", "rising − ipr", "rising-expert − fixed", "rising-expert − ipr", "rising-equal − fixed-equal"]
    assert lines[0] == "| r | rising − fixed | 2 | +50.0 (+0.0 to +100.0) | 1 | 0 |"
    del rewards["fixed-equal"]  # not evaluated yet (a run in progress): no row
    assert len(rro_against_baselines("r", methods, rewards, resamples=100)) == 4


def test_bootstrap_interval_brackets_the_mean():
    values = [0.0] * 60 + [100.0] * 40
    low, high = interval(values, resamples=2000)
    assert low < 40.0 < high
    assert 15 < high - low < 25  # about ±1.96 * sqrt(.24/100) * 100
    assert interval([50.0] * 5, resamples=100) == (50.0, 50.0)
    assert all(math.isnan(x) for x in interval([], resamples=100))


def test_rising_share_per_third_of_the_walk():
    walks = [
        {"steps": [{"rose": True}, {"rose": True}, {"rose": False}]},
        {"steps": [{"rose": True}, {"rose": False}, {"rose": False}, {"rose": None}]},
        {"steps": [{"rose": False}]},
    ]
    # Thirds by position among the decided steps: (T, T), (T, F), (F, F) and a one-step walk's first third.
    assert rising_by_third(walks) == [2 / 3, 0.5, 0.0]


def test_iterations_explore_again_from_the_newest_model(tmp_path):
    stages, methods = plan(PipelineConfig(output=tmp_path, strategies=["rising"], iterations=2))
    by_name = {stage.name: stage.config for stage in stages}
    assert by_name["explore-rising-1"].model == str(tmp_path / "sft")
    assert by_name["dpo-rising-2"].model == str(tmp_path / "rising" / "iter1" / "dpo")
    assert by_name["explore-rising-2"].model == str(tmp_path / "rising" / "iter1" / "dpo")
    assert by_name["eval-rising-2"].model == str(tmp_path / "rising" / "iter2" / "dpo")
    assert [m["method"] for m in methods] == ["sft", "rising-1", "rising-2"]


def test_a_finished_stage_is_judged_on_what_it_produces():
    from rro.config import EvalConfig
    from rro.pipeline import _same_settings

    config = EvalConfig(policy="expert", limit=3, output="x")
    saved = config.model_dump(mode="json")
    assert _same_settings(saved, config)
    # Another environment's settings (a plug-in's, since uninstalled or never used here) and where the
    # stage ran (workers, a shared database server, the share of its memory vLLM took) do not count; a
    # setting rro gained since, at its default, does not either.
    assert _same_settings({**saved, "width": 6, "hints": True}, config)
    assert _same_settings({**saved, "workers": 4, "ray_address": "10.0.0.1:6379", "mariadb_host": "db"}, config)
    assert _same_settings({**saved, "gpu_memory_utilization": 0.15}, config)
    assert _same_settings({k: v for k, v in saved.items() if k != "max_steps"}, config)
    assert not _same_settings({**saved, "limit": 4}, config)
    assert not _same_settings({**saved, "scheme": "by-db"}, config)
    assert not _same_settings({k: v for k, v in saved.items() if k != "max_steps"},
                              EvalConfig(policy="expert", limit=3, max_steps=3, output="x"))


def test_where_the_candidates_went():
    from rro.report import steps_table, where_candidates_went

    def step(candidates, distinct, q_values, prev_value=0.0, rose=False):
        return {"candidates": candidates, "distinct_actions": distinct, "q_values": q_values,
                "prev_value": prev_value, "rose": rose}

    walks = [{"steps": [step(1, 1, [1.0], rose=True),            # stopped at once
                        step(3, 1, [0.0, 0.0, 0.0]),              # one action thrice, at the floor
                        step(3, 2, [0.0, 0.0, 0.0])]},            # at the floor, two actions
             {"steps": [step(3, 1, [0.5, 0.5, 0.5], prev_value=0.5),  # one action thrice, above the floor
                        step(3, 3, [0.0, 0.0, 1.0], rose=True),   # rose at the last: drew K
                        {"candidates": 1, "distinct_actions": 1, "q_values": [0.0], "rose": None}]}]  # IPR: no rule
    counts = where_candidates_went(walks, max_candidates=3)
    assert counts == {"steps": 5, "max_candidates": 3, "stopped_before_k": 1, "drew_k": 4, "drew_k_one_action": 2,
                      "drew_k_all_at_floor": 2, "drew_k_either": 3, "distinct_actions_per_step": 8 / 5}
    assert where_candidates_went([{"steps": [{"rose": None}]}], 3) is None
    table = steps_table({"rising": {"candidates": counts}, "ipr": {"candidates": None}}).splitlines()
    assert table[2:] == ["| rising | 5 | 3 | 1 (20%) | 4 (80%) | 2 (50%) | 2 (50%) | 3 (75%) | 1.60 |"]


@pytest.mark.parametrize("run", ["compare-large", "compare-qwen"])
def test_the_committed_steps_tables_are_their_records(run):
    """The committed steps.md (quoted in the README) is what the report makes of the committed record."""
    from rro.report import method_rows, read_results, steps_table

    results = Path(__file__).parents[1] / "docs" / "results" / run
    _, _, explorations = method_rows(run, read_results(results / "record"), resamples=10)
    assert steps_table(explorations) + "\n" == (results / "steps.md").read_text()
    quoted = {"compare-large": "| rising | 910 | 3 | 230 (25%) | 680 (75%) | 394 (58%) | 480 (71%) | 590 (87%) | 1.55 |",
              "compare-qwen": "| rising | 459 | 3 | 250 (54%) | 209 (46%) | 117 (56%) | 111 (53%) | 176 (84%) | 1.35 |"}
    assert quoted[run] in steps_table(explorations)
    # The equal-pairs arm trains on its methods' explorations again: each exploration appears once.
    assert not [name for name in explorations if name.endswith("-equal")]
