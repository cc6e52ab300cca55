"""Environments from other packages: the example package in examples/treasure-hunt, installed like
any third party's (`pip install -e examples/treasure-hunt`), runs through every rro command."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rro.agent.parse import parse_turn
from rro.agent.prompts import conversation_start
from rro.cli import app
from rro.config import ConfigError, EvalConfig, ExploreConfig, PipelineConfig, load_config
from rro.envs import base

runner = CliRunner()


def rro(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input, env={"COLUMNS": "200"})


@pytest.fixture(scope="module", autouse=True)
def treasure_hunt_installed():
    if not any(point.name == "treasure-hunt" for point in importlib.metadata.entry_points(group="rro.envs")):
        pytest.fail("the example environment is not installed: pip install -e examples/treasure-hunt")


def test_envs_lists_the_plug_in_with_its_options():
    result = rro("envs")
    assert result.exit_code == 0, result.output
    for expected in ("treasure-hunt", "--width int = 6", "--hints bool = true", "rro-treasure-hunt",
                     "intercode-sql", "--backend sqlite|mariadb = sqlite", "webshop"):
        assert expected in result.output, expected
    assert base.origin("intercode-sql") == "built-in"


def test_the_plug_ins_options_are_options_of_every_command():
    help_text = rro("eval", "--help").output
    assert "--width" in help_text and "--hints" in help_text and "Options of treasure-hunt" in help_text
    config = load_config(EvalConfig, None, env="treasure-hunt", width=3, output="x")
    assert config.env_options() == {"width": 3, "hints": True} and len(config.tasks()) == 2  # 6 pairs, 1 in 4 test
    with pytest.raises(ConfigError, match="width"):
        load_config(EvalConfig, None, env="treasure-hunt", width=1, output="x")
    with pytest.raises(ConfigError, match="backend is not a setting of treasure-hunt"):
        load_config(EvalConfig, None, env="treasure-hunt", backend="mariadb", output="x")
    with pytest.raises(ConfigError, match="width is not a setting of intercode-sql"):
        load_config(EvalConfig, None, width=3, output="x")
    with pytest.raises(ConfigError, match="treasure-hunt has no split 'dev'"):
        load_config(ExploreConfig, None, env="treasure-hunt", split="dev", output="x")


def test_prompt_example_and_parser_come_from_the_spec():
    messages = conversation_start("treasure-hunt", "You stand on cell 2.", icl_shots=1)
    assert messages[0]["content"].startswith("You are hunting for a treasure")
    assert messages[1] == {"role": "assistant", "content": "Thought: Let me try the right.\nAction: right"}
    assert messages[-1]["content"].endswith("You stand on cell 2.")
    assert parse_turn("Thought: go\nAction: Left", "treasure-hunt").action == "left"
    bad = parse_turn("Thought: go\nAction: jump", "treasure-hunt")
    assert bad.action is None and "left, right or dig" in bad.observation and "'Action: dig'" in bad.observation


def test_eval_with_the_expert_play_and_splits(tmp_path):
    out = tmp_path / "eval"
    result = rro("eval", "--env", "treasure-hunt", "--policy", "expert", "--split", "all", "--width", "4", "-o", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tasks"] == 12 and summary["avg_reward"] == 100.0  # the optimal policy always finds it
    steps = [len(json.loads(line)["steps"]) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert max(steps) == 4 and min(steps) == 2  # the shortest walk (distance 1..3), then dig

    result = rro("play", "treasure-hunt", "--task", "2-5", input="left\nright\nright\nright\nright\nright\ndig\n")
    assert result.exit_code == 0, result.output
    assert "Colder." in result.output and "You found the treasure!" in result.output and "reward: 1.0" in result.output
    assert "A wall. You are still on cell 5." in rro("play", "treasure-hunt", "--task", "4-5", "--width", "6",
                                                    input="right\nright\ndig\n").output
    assert rro("play", "treasure-hunt", "--task", "9-9").exit_code == 1

    assert "has no data files" in rro("data", "fetch", "treasure-hunt").output


def test_the_plug_in_adds_its_own_split_rows_and_commands():
    # `rro data splits` prints the table the plug-in declares: 6 x 5 (start, treasure) pairs, one in
    # four a test task; walks of 1..5 cells, 70 cells in all over the 30 pairs.
    result = rro("data", "splits", "treasure-hunt")
    assert result.exit_code == 0, result.output
    assert "mean walk to the treasure" in result.output and "longest walk" in result.output  # its columns
    rows = [line.split("│")[1:-1] for line in result.output.splitlines() if line.count("│") == 5]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["train", "22", f"{sum(abs(int(a) - int(b)) for a, b in _train_pairs()) / 22:.2f}", "5"],
        ["test", "8", f"{sum(abs(int(a) - int(b)) for a, b in _test_pairs()) / 8:.2f}", "5"],
        ["all", "30", "2.33", "5"]]
    # ... and its own command group, mounted as `rro treasure-hunt`
    result = rro("treasure-hunt", "map", "2-5")
    assert result.exit_code == 0 and result.output.strip() == "..S..T", result.output
    assert rro("treasure-hunt", "map", "1-3", "--width", "4").output.strip() == ".S.T"
    assert rro("treasure-hunt", "map", "9-9").exit_code != 0
    assert "treasure-hunt" in rro("--help").output


def _test_pairs():
    return [(s, t) for n, (s, t) in enumerate((s, t) for s in range(6) for t in range(6) if s != t) if n % 4 == 0]


def _train_pairs():
    return [(s, t) for n, (s, t) in enumerate((s, t) for s in range(6) for t in range(6) if s != t) if n % 4]


def test_a_command_group_that_clashes_is_left_out_and_reported(monkeypatch):
    import typer

    from rro.cli import add_environment_commands

    def group(name):
        sub = typer.Typer()

        @sub.command()
        def hello() -> None:
            print(f"hello from {name}")
        return sub

    def broken_group():
        raise RuntimeError("cannot build")

    clashing = base.EnvSpec(
        name="clashing-env", make=lambda: None, load_tasks=lambda split="test": [], expert=lambda task: iter(()),
        terminal_actions=frozenset(), instruction="Do it.",
        commands={"run": lambda: group("run"), "clashing": lambda: group("clashing"), "broken": broken_group})
    monkeypatch.setattr(base, "_REGISTRY", base._Registry())
    base.register(clashing)
    base._REGISTRY.loaded = True  # only this environment
    cli = typer.Typer()

    @cli.command("run")
    def run() -> None:
        print("core run")

    add_environment_commands(cli)
    runner = CliRunner()
    assert runner.invoke(cli, ["run"]).output.strip() == "core run"  # the core command stays
    assert runner.invoke(cli, ["clashing", "hello"]).output.strip() == "hello from clashing"
    assert base.broken() == {"clashing-env: command group 'run'": "`rro run` is already a command",
                             "clashing-env: command group 'broken'": "RuntimeError: cannot build"}
    with pytest.raises(ValueError, match="command group names"):
        base.register(base.EnvSpec(name="bad-group", make=lambda: None, load_tasks=lambda split="test": [],
                                   expert=lambda task: iter(()), terminal_actions=frozenset(),
                                   instruction="Do it.", commands={"Bad Name": broken_group}))


def test_explore_with_the_tiny_model(tmp_path, tiny_policy):
    out = tmp_path / "explore"
    result = rro("explore", "--env", "treasure-hunt", "--width", "3", "--model", "tiny-random", "--dtype", "float32",
                 "--limit", "2", "--rollouts", "1", "--max-candidates", "2", "--max-steps", "3",
                 "--max-new-tokens", "8", "-o", str(out))
    assert result.exit_code == 0, result.output
    stats = json.loads((out / "stats.json").read_text())
    assert stats["tasks"] == 2 and stats["steps"] >= 2
    assert json.loads((out / "config.json").read_text())["width"] == 3


PLUGIN_RUN = """
output = "{output}"
model = "tiny-random"
env = "treasure-hunt"
strategies = ["ipr"]

[experts]
width = 4
limit = 4

[sft]
epochs = 1
batch_size = 2
gradient_accumulation_steps = 1
precision = "fp32"

[eval]
width = 4
limit = 2
max_steps = 3
max_new_tokens = 8
dtype = "float32"

[explore]
width = 4
limit = 2
rollouts = 1
max_candidates = 2
max_steps = 4
max_new_tokens = 8
dtype = "float32"

[dpo]
epochs = 1
precision = "fp32"
"""


def test_the_pipeline_runs_on_the_plug_in(tmp_path, tiny_policy):
    config = tmp_path / "run.toml"
    config.write_text(PLUGIN_RUN.format(output=tmp_path / "run"))
    result = rro("run", str(config))
    assert result.exit_code == 0, result.output
    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    assert results["env"] == "treasure-hunt" and [m["method"] for m in results["methods"]] == ["sft", "ipr"]
    assert json.loads((run / "experts.report.json").read_text())["kept"] == 4  # the expert always scores 1.0
    # The expert's dig on the treasure is worth exactly 1.0; the tiny model's turns are not: IPR pairs, DPO trains.
    pairs = (run / "ipr" / "iter1" / "explore" / "pairs.jsonl").read_text().splitlines()
    trained = json.loads((run / "ipr" / "iter1" / "dpo" / "rro-train.json").read_text())
    assert pairs and trained["records"] == len(pairs)
    assert json.loads((run / "ipr" / "iter1" / "eval" / "summary.json").read_text())["tasks"] == 2


def test_a_broken_plug_in_is_reported_and_the_others_load(monkeypatch):
    broken = importlib.metadata.EntryPoint("broken-env", "no_such_module_anywhere:SPEC", base.ENTRY_POINT_GROUP)
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group: [*real(group=group), broken])
    monkeypatch.setattr(base, "_REGISTRY", base._Registry())
    assert {"intercode-sql", "webshop", "treasure-hunt"} <= set(base.names())
    assert "ModuleNotFoundError" in base.broken()["broken-env = no_such_module_anywhere:SPEC"]


def test_a_spec_that_breaks_the_contract_is_refused():
    from tests.toy import ToyEnv

    with pytest.raises(ValueError, match="needs an instruction"):
        base.register(base.EnvSpec(name="no-instruction", make=ToyEnv, load_tasks=list, expert=iter,
                                   terminal_actions=frozenset()))
    with pytest.raises(ValueError, match="task_options"):
        base.register(base.EnvSpec(name="bad-options", make=ToyEnv, load_tasks=list, expert=iter,
                                   terminal_actions=frozenset(), instruction="x", task_options=("nope",)))
    assert "no-instruction" not in base.names()


def test_settings_that_clash_leave_their_environment_out(monkeypatch):
    from pydantic import BaseModel

    import rro.config
    from tests.toy import ToyEnv

    class Width(BaseModel):
        width: int = 3

    class OtherWidth(BaseModel):
        width: str = "wide"

    class Seed(BaseModel):
        seed: int = 1

    monkeypatch.setattr(base, "_REGISTRY", base._Registry(loaded=True))
    monkeypatch.setattr(rro.config, "ENV_OPTIONS", {})
    for name, options in (("first", Width), ("second", OtherWidth), ("third", Seed)):
        base.register(base.EnvSpec(name=name, make=ToyEnv, load_tasks=list, expert=iter, terminal_actions=frozenset(),
                                   instruction="x", options=options))
    with pytest.warns(UserWarning, match="left out"):
        fields = rro.config._environment_fields(reserved={"seed"})
    assert list(fields) == ["width"] and fields["width"][0] is int
    assert base.names() == ["first"] and set(base.broken()) == {"second", "third"}


def test_run_wide_settings_are_top_level_in_rro_run(tmp_path):
    from rro.pipeline import plan

    assert "width" not in PipelineConfig.model_fields  # a per-stage setting: stage tables take it
    assert {"backend", "scheme"} <= set(PipelineConfig.model_fields)  # InterCode-SQL's run-wide settings
    stages, _ = plan(PipelineConfig(output=tmp_path, env="treasure-hunt", eval={"width": 5}))
    assert {stage.name: getattr(stage.config, "width", None) for stage in stages}["eval-sft"] == 5
    with pytest.raises(ConfigError, match="backend is not a setting of treasure-hunt"):
        load_config(PipelineConfig, None, output=tmp_path, env="treasure-hunt", backend="mariadb")
    with pytest.raises(ConfigError, match=r"\[eval\] may not set backend"):
        plan(PipelineConfig(output=tmp_path, eval={"backend": "mariadb"}))


def test_listing_environments_imports_no_environment_code():
    code = ("import sys, rro.cli, rro.envs.base as b; b.names(); "
            "print(sorted(m for m in ('sqlglot', 'bm25s', 'spacy', 'rro.envs.intercode_sql.env', "
            "'rro.envs.webshop.env') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
