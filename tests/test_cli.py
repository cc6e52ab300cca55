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
    assert summary["env_options"] == {"scheme": "by-query", "dbs": [], "hardness": [], "include_empty_dbs": False,
                                      "backend": "sqlite", "mariadb_host": None, "mariadb_port": 3306,
                                      "mariadb_socket": None}
    # The title names what ran (scheme, backend) and what was changed, not an unused server's port.
    title = " ".join(result.output.split())  # the table's title wraps at the terminal's width
    assert "(scheme by-query, backend sqlite)" in title and "mariadb" not in result.output
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
    title = " ".join(result.output.split())
    assert "backend mariadb)" in title and "mariadb_port" not in title  # the default port: not named
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
    assert report["kept"] == 8 and report["tasks"] == 8 and report["env_options"]["scheme"] == "by-query"


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


def test_sigterm_stops_a_run_that_the_same_command_resumes(tmp_path, tiny_policy):
    """`kill PID` or a scheduler's time limit: rro exits as from an error (so an in-process engine
    shuts down, tests/test_policy_vllm.py), says how to go on, and the rerun finishes the work."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from tests.interrupt import started_until_first_walk

    out = tmp_path / "explore"
    command = [str(Path(sys.executable).with_name("rro")), "explore", "--model", "tiny-random", "--dtype", "float32",
               "--limit", "3", "--tasks-per-batch", "1", "--rollouts", "2", "--max-candidates", "2",
               "--max-steps", "2", "--max-new-tokens", "8", "-o", str(out)]
    run = started_until_first_walk(command, out, timeout=300)
    walks = out / "walks.jsonl"
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=120) == 128 + signal.SIGTERM
    assert "rerun the same command to resume" in run.stderr.read()
    assert not (out / "rro.lock").exists()  # the output folder is released on the way out
    assert 1 <= len(walks.read_text().splitlines()) < 3
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert len(walks.read_text().splitlines()) == 3
