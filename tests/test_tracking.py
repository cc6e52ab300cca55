"""Exploration and evaluation report to the tracker training reports to (`report_to`): the tiny
pipeline run (tests/conftest.py, `report_to = "tensorboard"`) leaves TensorBoard event files in
every stage's folder, read back here and compared with the stage's own output files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def _events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted((folder / "tensorboard").rglob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file under {folder}"
    accumulator = EventAccumulator(str(files[0].parent), size_guidance={"scalars": 0, "histograms": 0})
    accumulator.Reload()
    return accumulator


def _scalars(accumulator) -> dict[str, list[tuple[int, float]]]:
    return {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


@pytest.fixture(scope="module")
def run(cli_run) -> Path:
    folder, status, output = cli_run
    assert status == 0, output[-3000:]
    return folder


@pytest.mark.parametrize("method", ["rising", "ipr"])
def test_exploration_metrics_reach_tensorboard(run, method):
    explore = run / method / "iter1" / "explore"
    stats = json.loads((explore / "stats.json").read_text())
    accumulator = _events(explore)
    scalars = _scalars(accumulator)
    # Logged as tasks finish (one chunk of both tasks here), the last value at the last task.
    last = {tag: values[-1] for tag, values in scalars.items()}
    assert {step for step, _ in last.values()} == {stats["tasks"]} == {2}
    assert last["explore/pairs"][1] == stats["pairs"]
    assert last["explore/candidates_per_step"][1] == pytest.approx(stats["candidates_per_step"]["mean"])
    assert last["explore/rollouts"][1] == stats["rollouts"]
    assert last["explore/generated_tokens"][1] == stats["generated_tokens"]
    assert last["explore/final_reward"][1] == pytest.approx(stats["mean_final_reward"])
    walks = [json.loads(line) for line in (explore / "walks.jsonl").read_text().splitlines()]
    bars = [value for walk in walks for value in walk["values"]]
    assert last["explore/mean_value"][1] == pytest.approx(sum(bars) / len(bars))
    if stats["rising_rate"] is None:  # ipr draws one candidate and never asks whether it rose
        assert "explore/rising_rate" not in last
    else:
        assert last["explore/rising_rate"][1] == pytest.approx(stats["rising_rate"])
    # The distribution of candidates per step, not only its mean.
    histogram = accumulator.Histograms("explore/candidates_per_step_distribution")[-1].histogram_value
    assert histogram.num == stats["steps"] and histogram.sum == pytest.approx(stats["candidates_per_step"]["mean"] * stats["steps"])


@pytest.mark.parametrize("stage", ["eval-sft", "rising/iter1/eval", "ipr/iter1/eval"])
def test_evaluation_metrics_reach_tensorboard(run, stage):
    summary = json.loads((run / stage / "summary.json").read_text())
    scalars = _scalars(_events(run / stage))
    assert [step for step, _ in scalars["eval/avg_reward"]] == list(range(1, summary["tasks"] + 1))  # one per episode
    assert scalars["eval/avg_reward"][-1][1] == pytest.approx(summary["avg_reward"], abs=1e-4)
    assert scalars["eval/success_rate"][-1][1] == pytest.approx(summary["success_rate"], abs=1e-4)
    assert scalars["eval/generated_tokens"][-1][1] == summary["generated_tokens"]


@pytest.mark.parametrize("stage", ["sft", "ipr/iter1/dpo"])
def test_training_losses_stay_beside_the_checkpoint(run, stage):
    # transformers' default place, OUT/trainer/runs/, goes with the optimizer states when training ends.
    record = json.loads((run / stage / "rro-train.json").read_text())
    scalars = _scalars(_events(run / stage))
    # Every figure of the training record's log history, at its step (the tiny run logs its summary:
    # train_loss, for DPO its rewards and margins too).
    logged = {(f"train/{key}", entry["step"]): value for entry in record["log_history"]
              for key, value in entry.items() if key != "step" and isinstance(value, (int, float))}
    assert ("train/train_loss", record["log_history"][-1]["step"]) in logged
    for (tag, step), value in logged.items():
        assert dict(scalars[tag])[step] == pytest.approx(value, rel=1e-6), tag
    assert not (run / stage / "trainer").exists()


def test_a_replayed_exploration_reports_its_figures_too(tmp_path):
    """rising-expert of the committed compare-large record, replayed again from fixed-expert's
    recording: it samples nothing and logs its figures once, at its last task."""
    from typer.testing import CliRunner

    from rro.cli import app

    record = Path(__file__).resolve().parents[1] / "docs" / "results" / "compare-large" / "record"
    settings = json.loads((record / "rising-expert" / "iter1" / "explore" / "config.json").read_text())
    settings.update(output=str(tmp_path / "replayed"), replay_from=str(record / "fixed-expert" / "iter1" / "explore"),
                    report_to="tensorboard")
    config = tmp_path / "explore.toml"
    config.write_text("".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items() if value is not None))
    result = CliRunner().invoke(app, ["explore", "-c", str(config)])
    assert result.exit_code == 0, result.output
    stats = json.loads((tmp_path / "replayed" / "stats.json").read_text())
    assert stats["pairs"] == json.loads((record / "rising-expert" / "iter1" / "explore" / "stats.json").read_text())["pairs"]
    accumulator = _events(tmp_path / "replayed")
    scalars = _scalars(accumulator)
    assert scalars["explore/pairs"] == [(200, stats["pairs"])]
    assert scalars["explore/candidates_per_step"][0][1] == pytest.approx(stats["candidates_per_step"]["mean"])
    assert scalars["explore/rising_rate"][0][1] == pytest.approx(stats["rising_rate"])
    histogram = accumulator.Histograms("explore/candidates_per_step_distribution")[0].histogram_value
    assert histogram.num == stats["steps"]
