"""Bad input through the real command line: one plain line naming the problem, exit status 1, no
traceback, nothing written first (docs/guarantees.md)."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

from rro.cli import app

runner = CliRunner()


def failed(*args: str) -> str:
    """Run `rro ARGS`; assert that it failed the expected way and return what it printed."""
    result = runner.invoke(app, list(args))
    # A SystemExit is typer's way out of a command; any other exception is a traceback for the user.
    assert isinstance(result.exception, SystemExit), f"not a plain error: {result.exception!r}\n{result.output}"
    assert result.exit_code == 1, result.output
    assert result.output.count("error:") == 1 and "Traceback" not in result.output, result.output
    return result.output


def test_non_finite_settings_are_refused(tmp_path):
    assert "temperature: Input should be a finite number (got inf)" in failed(
        "explore", "--model", "tiny-random", "--temperature", "inf", "-o", str(tmp_path / "a"))
    config = tmp_path / "explore.toml"
    config.write_text(f'margin = nan\nmodel = "tiny-random"\noutput = "{tmp_path / "b"}"\n')
    assert "margin: Input should be a finite number" in failed("explore", "-c", str(config))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_unknown_device_is_refused(tmp_path):
    output = failed("eval", "--policy", "expert", "--device", "quantum", "--limit", "1", "-o", str(tmp_path / "e"))
    assert "device:" in output and "cuda:N" in output
    assert not (tmp_path / "e").exists()


def test_model_fetch_of_a_path_creates_nothing(rro_home):
    before = sorted(p.name for p in rro_home.parent.iterdir())
    assert "unknown model name '../../X'" in failed("model", "fetch", "../../X")
    assert sorted(p.name for p in rro_home.parent.iterdir()) == before  # no RRO_HOME/models/../../X


def test_a_misspelt_model_name_says_which_was_meant(tmp_path):
    output = failed("eval", "--model", "smolm2-135m", "--limit", "1", "-o", str(tmp_path / "e"))
    assert "unknown model name 'smolm2-135m': did you mean smollm2-135m?" in output


def test_output_in_a_stage_table_names_the_table(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text(f'output = "{tmp_path / "run"}"\n\n[sft]\noutput = "elsewhere"\n')
    assert "[sft] may not set output: the pipeline sets it" in failed("run", str(config))
    assert not (tmp_path / "run").exists()


def test_text_with_markup_is_printed_as_it_is(tmp_path):
    (tmp_path / "[").mkdir()
    blocker = tmp_path / "[" / "red]file"  # the path holds "[/red]", a closing tag to Rich
    blocker.write_text("a file, where a folder is needed")
    output = failed("eval", "--policy", "expert", "--limit", "1", "-o", str(blocker / "out"))
    assert f"{blocker / 'out'}: a part of this path is a file, not a folder" in output


def test_rro_home_at_a_file_is_one_line(tmp_path, monkeypatch):
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    monkeypatch.setenv("RRO_HOME", str(home))
    output = failed("eval", "--policy", "expert", "--limit", "1", "-o", str(tmp_path / "e"))
    assert f"this is rro's cache, RRO_HOME={home}" in output


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to fill a disk")
def test_a_full_disk_is_one_line_and_keeps_finished_work(tmp_path):
    out = tmp_path / "e"
    out.mkdir()
    (out / "summary.json.tmp").symlink_to("/dev/full")  # every write there fails with ENOSPC
    output = failed("eval", "--policy", "expert", "--limit", "2", "-o", str(out))
    assert "the disk is full: free space, then rerun the same command" in output
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 2  # the episodes finished are kept
    (out / "summary.json.tmp").unlink()
    result = runner.invoke(app, ["eval", "--policy", "expert", "--limit", "2", "-o", str(out)])
    assert result.exit_code == 0 and json.loads((out / "summary.json").read_text())["tasks"] == 2


def test_verbose_shows_the_traceback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = runner.invoke(app, ["--verbose", "eval", "--policy", "expert", "-o", str(blocker / "out")])
    assert result.exit_code == 1 and "Traceback" in result.output and "error:" in result.output
