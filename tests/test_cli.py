"""The commands a user runs, end to end through the CLI."""

import json

import pytest
from typer.testing import CliRunner

from rro.cli import app

runner = CliRunner()


def rro(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def test_data_fetch_from_mirror(rro_home):
    import os

    result = rro("data", "fetch", "intercode-sql", "--from", os.environ["RRO_DATA_MIRROR"])
    assert result.exit_code == 0, result.output


def test_play_reads_actions_from_stdin():
    result = rro("play", "intercode-sql", "--task", "0",
                 input="SHOW TABLES\nSELECT T1.Name FROM people AS T1 JOIN poker_player AS T2 ON T1.People_ID = "
                       "T2.People_ID ORDER BY T2.Final_Table_Made\nsubmit\n")
    assert result.exit_code == 0, result.output
    assert "[('people',), ('poker_player',)]" in result.output
    assert "reward: 1.0" in result.output


def test_play_without_submit_scores_zero():
    result = rro("play", "intercode-sql", "--task", "0", input="DROP TABLE people\n")
    assert "Error executing query" in result.output and "reward 0" in result.output


def test_eval_expert_writes_summary_and_resumes(tmp_path):
    out = tmp_path / "eval"
    result = rro("eval", "--policy", "expert", "--split", "test", "--limit", "6", "-o", str(out))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tasks"] == 6 and summary["avg_reward"] == 100.0 and summary["success_rate"] == 100.0
    assert set(summary["by_hardness"]) <= {"easy", "medium", "hard", "extra"}
    lines = (out / "episodes.jsonl").read_text().splitlines()
    assert len(lines) == 6

    # Interrupted run: two episodes kept, a third cut mid-line. Rerunning completes it, no duplicates.
    (out / "episodes.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:40])
    result = rro("eval", "--policy", "expert", "--split", "test", "--limit", "6", "-o", str(out))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (out / "episodes.jsonl").read_text().splitlines()]
    assert sorted(r["task_id"] for r in records) == sorted(json.loads(line)["task_id"] for line in lines)

    # A finished run is a no-op; a different setting in the same folder is refused.
    assert rro("eval", "--policy", "expert", "--split", "test", "--limit", "6", "-o", str(out)).exit_code == 0
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 6
    result = rro("eval", "--policy", "expert", "--split", "train", "--limit", "6", "-o", str(out))
    assert result.exit_code == 1 and "different settings" in result.output


@pytest.mark.mariadb
def test_eval_expert_on_mariadb(tmp_path, mariadb_server):
    out = tmp_path / "eval"
    result = rro("eval", "--policy", "expert", "--backend", "mariadb", "--limit", "5", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "summary.json").read_text())["avg_reward"] == 100.0


def test_experts_are_chat_conversations(tmp_path):
    out = tmp_path / "experts.jsonl"
    result = rro("data", "experts", "intercode-sql", "--split", "train", "--limit", "8", "-o", str(out))
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 8
    for record in records:
        roles = [m["role"] for m in record["messages"]]
        assert roles[0] == "user" and roles[-1] == "assistant"
        assert all(a != b for a, b in zip(roles, roles[1:]))  # strictly alternating
        assert record["messages"][-1]["content"].endswith("Action: submit")
        assert record["reward"] == 1.0
    report = json.loads(out.with_suffix(".report.json").read_text())
    assert report["kept"] == 8 and report["tasks"] == 8


def test_config_file_and_bad_fields(tmp_path):
    config = tmp_path / "eval.toml"
    config.write_text(f'policy = "expert"\nsplit = "test"\nlimit = 2\noutput = "{tmp_path / "from-config"}"\n')
    assert rro("eval", "--config", str(config)).exit_code == 0
    assert (tmp_path / "from-config" / "summary.json").exists()

    config.write_text('max_steps = 0\noutput = "x"\n')
    result = rro("eval", "--config", str(config))
    assert result.exit_code == 1 and "max_steps" in result.output

    config.write_text('max_stepz = 3\noutput = "x"\n')
    result = rro("eval", "--config", str(config))
    assert result.exit_code == 1 and "max_stepz" in result.output

    result = rro("eval", "--backend", "postgres", "-o", str(tmp_path / "x"))
    assert result.exit_code == 1 and "backend" in result.output
