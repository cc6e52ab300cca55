"""Every setting is declared once, on its config model: the command-line options, `--help`, TOML
keys and `rro run` tables all come from the model's fields."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

import rro.pipeline
from rro import cli
from rro.cli_options import config_command
from rro.config import DpoConfig, EvalConfig, ExpertsConfig, ExploreConfig, PipelineConfig, SftConfig, StrictModel

runner = CliRunner()


class Everything(StrictModel):
    """A model with one field of each kind an option can have."""

    name: str = Field(default="x", description="A string.")
    count: int = Field(default=3, ge=1, description="An integer.")
    rate: float = Field(default=0.5, description="A float.")
    loud: bool = Field(default=False, description="A flag.")
    mode: Literal["fast", "slow"] = Field(default="fast", description="A choice.")
    where: Path = Field(default=Path("here"), description="A path.")
    cap: int | None = Field(default=None, ge=1, description="An optional integer.")
    tags: list[str] = Field(default_factory=list, description="A repeatable string.", json_schema_extra={"cli": ["--tag"]})
    levels: list[Literal["low", "high"]] = Field(default_factory=list, description="A repeatable choice.")
    output: Path = Field(description="Required.", json_schema_extra={"cli": ["--output", "-o"]})


def capture_app(model, **options):
    """A one-command app whose command stores the config it was given."""
    app, seen = typer.Typer(), []
    config_command(app, "go", model, on_error=cli._fail, **options)(seen.append)
    app.command("other")(lambda: None)  # keeps "go" a subcommand, as in rro
    return app, seen


def test_every_kind_of_field_is_an_option(tmp_path):
    app, seen = capture_app(Everything)
    result = runner.invoke(app, ["go", "-o", "out", "--name", "y", "--count", "7", "--rate", "0.25", "--loud",
                                 "--mode", "slow", "--where", "there", "--cap", "2", "--tag", "a", "--tag", "b",
                                 "--levels", "high", "--levels", "low"])
    assert result.exit_code == 0, result.output
    assert seen[-1] == Everything(output=Path("out"), name="y", count=7, rate=0.25, loud=True, mode="slow",
                                  where=Path("there"), cap=2, tags=["a", "b"], levels=["high", "low"])
    # Nothing given: the model's defaults, not typer's.
    assert runner.invoke(app, ["go", "-o", "out"]).exit_code == 0
    assert seen[-1] == Everything(output=Path("out"))


def test_help_shows_descriptions_choices_and_each_default_once():
    app, _ = capture_app(Everything)
    text = runner.invoke(app, ["go", "--help"], env={"COLUMNS": "200"}).output
    for expected in ("A string. (default: x)", "An integer. (default: 3)", "A flag. (default: false)",
                     "[fast|slow]", "A choice. (default: fast)", "--tag", "A repeatable string. (repeatable)",
                     "[low|high]", "Required. (required, here or in --config)", "--no-loud", "-o"):
        assert expected in text, expected
    assert text.count("default: 3") == 1
    assert "An optional integer. (default" not in text  # None is not a value worth showing


def test_command_line_overrides_toml_and_errors_name_the_field(tmp_path):
    app, seen = capture_app(Everything)
    toml = tmp_path / "go.toml"
    toml.write_text('output = "from-toml"\ncount = 5\nloud = true\ntags = ["t"]\n')
    assert runner.invoke(app, ["go", "-c", str(toml)]).exit_code == 0
    assert (seen[-1].output, seen[-1].count, seen[-1].loud, seen[-1].tags) == (Path("from-toml"), 5, True, ["t"])
    assert runner.invoke(app, ["go", "-c", str(toml), "--count", "9", "--no-loud", "--tag", "u"]).exit_code == 0
    assert (seen[-1].count, seen[-1].loud, seen[-1].tags) == (9, False, ["u"])

    result = runner.invoke(app, ["go", "-o", "x", "--count", "0"])
    assert result.exit_code == 1 and "count" in result.output
    result = runner.invoke(app, ["go", "-o", "x", "--mode", "medium"])
    assert result.exit_code == 1 and "mode" in result.output
    toml.write_text('output = "x"\ncuont = 5\n')
    result = runner.invoke(app, ["go", "-c", str(toml)])
    assert result.exit_code == 1 and "cuont" in result.output
    result = runner.invoke(app, ["go"])
    assert result.exit_code == 1 and "output" in result.output


class EvalWithKnob(EvalConfig):
    """EvalConfig with one more setting, declared nowhere else."""

    knob: int = Field(default=4, ge=0, description="A setting added to the model only.")


def test_a_field_added_to_a_model_reaches_cli_help_toml_and_run_tables(tmp_path, monkeypatch):
    app, seen = capture_app(EvalWithKnob)
    assert runner.invoke(app, ["go", "-o", "out", "--knob", "9", "--policy", "expert"]).exit_code == 0
    assert seen[-1].knob == 9 and seen[-1].policy == "expert"
    assert "A setting added to the model only. (default: 4)" in runner.invoke(
        app, ["go", "--help"], env={"COLUMNS": "200"}).output
    toml = tmp_path / "eval.toml"
    toml.write_text('output = "out"\nknob = 2\n')
    assert runner.invoke(app, ["go", "-c", str(toml)]).exit_code == 0 and seen[-1].knob == 2

    monkeypatch.setattr(rro.pipeline, "EvalConfig", EvalWithKnob)
    stages, _ = rro.pipeline.plan(PipelineConfig(output=tmp_path / "run", eval={"knob": 7}))
    assert [stage.config.knob for stage in stages if stage.name.startswith("eval-")] == [7, 7]
    with pytest.raises(rro.config.ConfigError, match=r"eval\.knob"):
        rro.pipeline.plan(PipelineConfig(output=tmp_path / "run", eval={"knob": -1}))


def _options(*path: str) -> dict[str, list[str]]:
    command = typer.main.get_command(cli.app)
    for name in path:
        command = command.commands[name]
    return {param.name: param.opts + param.secondary_opts for param in command.params}


@pytest.mark.parametrize("path, model", [(("eval",), EvalConfig), (("explore",), ExploreConfig),
                                         (("sft",), SftConfig), (("dpo",), DpoConfig),
                                         (("data", "experts"), ExpertsConfig)])
def test_each_command_offers_every_field_of_its_model(path, model):
    options = _options(*path)
    assert set(options) == set(model.model_fields) | {"config"}
    assert options["config"] == ["--config", "-c"] and options["output"] == ["--output", "-o"]


def test_irregular_option_names_are_kept():
    sft = _options("sft")
    assert sft["learning_rate"] == ["--lr"] and sft["gradient_accumulation_steps"] == ["--grad-accum"]
    assert sft["lora"] == ["--lora", "--full"]
    assert _options("eval")["dbs"] == ["--db"]
    assert _options("explore")["adaptive"][0] == "--adaptive"
    assert _options("eval")["include_empty_dbs"][0] == "--include-empty-dbs"
    assert _options("data", "experts")["env"] == ["env"]  # positional
    assert set(_options("run")) == {"config", "output"}


def test_training_options_reach_the_trainer(tmp_path, monkeypatch):
    import rro.train.sft

    seen = []

    def fake_sft(config):
        seen.append(config)
        return {"kind": "sft", "records": 0, "train_seconds": 0.0, "config": {"output": str(config.output)}}

    monkeypatch.setattr(rro.train.sft, "sft", fake_sft)
    result = runner.invoke(cli.app, ["sft", "--data", "a.jsonl", "--data", "b.jsonl", "-o", str(tmp_path / "m"),
                                     "--lr", "0.5", "--grad-accum", "3", "--lora", "--epochs", "1.5"])
    assert result.exit_code == 0, result.output
    config = seen[-1]
    assert config.data == [Path("a.jsonl"), Path("b.jsonl")] and config.learning_rate == 0.5
    assert config.gradient_accumulation_steps == 3 and config.lora and config.epochs == 1.5
    assert config.batch_size == SftConfig.model_fields["batch_size"].default


def test_vllm_engine_settings_reach_the_backend(monkeypatch, tmp_path):
    """The engine's fields go to the vLLM backend as given (kv_block_size None: its CPU/GPU default)."""
    seen = {}

    def load_policy(model, backend="hf", **options):
        seen.update(options, model=model, backend=backend)
        return "the policy"

    monkeypatch.setattr("rro.policy.load_policy", load_policy)
    config = ExploreConfig(model="m", policy_backend="vllm", kv_block_size=16, enforce_eager=True, max_model_len=512,
                           output=tmp_path)
    assert config.load_policy() == "the policy"
    assert seen == {"model": "m", "backend": "vllm", "dtype": "auto", "gpu_memory_utilization": None,
                    "max_model_len": 512, "enforce_eager": True, "seed": 0, "kv_block_size": 16}
    with pytest.raises(ValueError, match="kv_block_size"):
        ExploreConfig(kv_block_size=0, output=tmp_path)
