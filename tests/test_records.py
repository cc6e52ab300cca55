"""A resume trusts no record it cannot read or place (docs/guarantees.md), through the real CLI:
unreadable lines are errors naming the file and the line, a torn last line is repaired and said,
and records of other settings are refused even when config.json is gone or replaced."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from rro.cli import app

runner = CliRunner()
EXPLORE = ["explore", "--model", "tiny-random", "--dtype", "float32", "--limit", "2", "--tasks-per-batch", "1",
           "--rollouts", "1", "--max-candidates", "2", "--max-steps", "1", "--max-new-tokens", "4"]


@pytest.fixture(scope="module")
def explored(tmp_path_factory, rro_home):
    """A finished exploration of two tasks (copy it before changing it)."""
    out = tmp_path_factory.mktemp("records") / "explore"
    result = runner.invoke(app, [*EXPLORE, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def copy_of(explored, tmp_path):
    out = tmp_path / "explore"
    shutil.copytree(explored, out)
    return out


def plain_failure(result) -> str:
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (result.exception, result.output)
    assert "Traceback" not in result.output and result.output.count("error:") == 1, result.output
    return " ".join(result.output.split())


@pytest.mark.parametrize("line, problem", [
    (b"garbage\n", "is not JSON"),
    (b"\xff\xfe not text\n", "is not UTF-8 text"),
    (b"{}\n", "is {}, not a record"),
    (b"null\n", "is null, not a record"),
])
def test_unreadable_lines_are_errors_naming_file_and_line(explored, tmp_path, line, problem):
    out = copy_of(explored, tmp_path)
    walks = out / "walks.jsonl"
    walks.write_bytes(walks.read_bytes() + line)  # a third line, whole (it ends in a newline)
    before = walks.read_bytes()
    output = plain_failure(runner.invoke(app, [*EXPLORE, "-o", str(out)]))
    assert f"error: {walks} line 3 {problem}" in output and "delete that line" in output
    assert walks.read_bytes() == before  # nothing appended after it


def test_rro_report_names_an_unreadable_line(cli_run, tmp_path):
    run, status, _ = cli_run
    assert status == 0
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    walks = copy / "rising" / "iter1" / "explore" / "walks.jsonl"
    lines = walks.read_text().splitlines(keepends=True)
    walks.write_text(lines[0] + "garbage\n" + "".join(lines[1:]))
    output = plain_failure(runner.invoke(app, ["report", str(copy), "-o", str(tmp_path / "report")]))
    assert f"error: {walks} line 2 is not JSON" in output


def test_a_torn_last_line_is_repaired_and_said(explored, tmp_path):
    out = copy_of(explored, tmp_path)
    walks = out / "walks.jsonl"
    first, second = walks.read_text().splitlines(keepends=True)
    walks.write_text(first + second[: len(second) // 2])  # the second walk cut short mid-write
    result = runner.invoke(app, [*EXPLORE, "-o", str(out)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert f"note: {walks} ended in a line cut short by an interruption ({len(second) // 2} bytes): removed" in output
    records = [json.loads(line) for line in walks.read_text().splitlines()]
    assert [r["task_id"] for r in records] == [json.loads(first)["task_id"], json.loads(second)["task_id"]]


def test_a_missing_or_replaced_config_cannot_mix_settings(explored, tmp_path):
    out = copy_of(explored, tmp_path)
    walks = out / "walks.jsonl"
    saved = json.loads((out / "config.json").read_text())
    (out / "config.json").unlink()
    more_rollouts = [*EXPLORE[:EXPLORE.index("--rollouts") + 1], "2", *EXPLORE[EXPLORE.index("--rollouts") + 2:]]
    output = plain_failure(runner.invoke(app, [*more_rollouts, "-o", str(out), "--limit", "3"]))
    assert f"error: {walks} line 1 was written with other settings than this run's" in output
    assert not (out / "config.json").exists() and len(walks.read_text().splitlines()) == 2

    # Replaced by the config of another run: the records still say which settings made them.
    (out / "config.json").write_text(json.dumps({**saved, "rollouts": 2}))
    output = plain_failure(runner.invoke(app, [*more_rollouts, "-o", str(out), "--limit", "3"]))
    assert f"error: {walks} line 1 was written with other settings than this run's" in output

    # With the settings that made them, the folder resumes (here: is finished) and config.json is right again.
    (out / "config.json").unlink()
    result = runner.invoke(app, [*EXPLORE, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["rollouts"] == 1
    assert len(walks.read_text().splitlines()) == 2
