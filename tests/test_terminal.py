"""A clean terminal: rro's own progress, and none of the libraries' internals unless asked (-v)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time

import pytest
from rich.console import Console
from typer.testing import CliRunner

from rro import __version__
from rro.cli import app
from rro.progress import INTERVAL_VARIABLE, StageProgress
from rro.terminal import _QUIET_ENVIRONMENT
from tests.conftest import TINY_CLI_RUN, run_in_terminal

# What the libraries print on their own during `rro run` (seen in the quickstart before rro silenced it).
LIBRARY_LINES = [
    "Tokenizing train dataset",  # datasets' progress bars, as TRL names them
    "Truncating train dataset",
    "Dropping fully truncated examples",
    "Computing reference log probs",  # TRL's DPO bar
    "Caching reference log probs",
    "Flattening the indices",  # datasets
    "Loading weights",  # transformers
    "is_gradient_checkpointing",  # transformers' FutureWarning, raised from TRL
    "FutureWarning",
    "{'train_runtime'",  # the trainer's printed metric dicts
    "{'loss'",
    "it/s]",  # any tqdm bar
    "examples/s]",
]


def _plain(output: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output)


def test_rro_run_shows_only_rros_progress(cli_run):
    run, status, output = cli_run
    text = _plain(output)
    assert status == 0, text[-3000:]
    found = [line for line in LIBRARY_LINES if line in text]
    assert not found, f"library output on the terminal: {found}\n{text[-3000:]}"
    # rro's own display: every stage announced, training shown as rro's line, the run's end.
    for stage in ("1/9 experts", "2/9 sft", "eval-sft", "explore-rising-1", "explore-ipr-1", "dpo-ipr-1"):
        assert stage in text
    assert re.search(r"sft .*\d+/\d+ steps", text) and re.search(r"dpo .*\d+/\d+ steps", text)
    assert "done:" in text
    trained = (run / "ipr" / "iter1" / "dpo" / "rro-train.json").read_text()
    assert '"records": 0' not in trained  # DPO really ran (its library lines had their chance to print)


def test_report_output_is_clean(cli_run, tmp_path):
    run, status, _ = cli_run
    assert status == 0
    status, output = run_in_terminal([sys.executable, "-m", "rro.cli", "report", str(run), "-o", str(tmp_path / "report")],
                                     cwd=tmp_path)
    text = _plain(output)
    assert status == 0, text
    assert "index.html" in text and not [line for line in LIBRARY_LINES if line in text]


def test_version_and_errors_still_print():
    runner = CliRunner()
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"rro {__version__}"
    result = runner.invoke(app, ["explore", "--rollouts", "0", "-o", "/nonexistent/x"])
    assert result.exit_code == 1 and "rollouts" in result.output


# A plain progress line: "[12:34:56] sft  3/8 steps  2.1 s/step  ETA 0:00:10  elapsed 0:00:06  loss 1.2345".
PROGRESS_LINE = re.compile(r"^\[\d\d:\d\d:\d\d\] (?P<stage>[a-z][a-z -]*?)  (?P<done>\d+)/(?P<total>\d+) "
                           r"(?P<unit>steps|tasks)  (?P<rest>.*elapsed \d+:\d\d:\d\d.*)$", re.MULTILINE)


def test_rro_run_into_a_log_file_prints_plain_progress_lines(rro_home, tmp_path):
    """`rro run CONFIG > run.log 2>&1`, as a batch job runs it: every stage's progress is in the file,
    as plain lines with done/total, rate, ETA and the stage's figure; no bar, no terminal codes."""
    config = tmp_path / "run.toml"
    # IPR alone: its exact `submit` values make pairs, so DPO trains and shows its progress too.
    config.write_text(TINY_CLI_RUN.format(output=tmp_path / "run").replace('["rising", "ipr"]', '["ipr"]')
                      .replace("[eval]\nlimit = 2", "[eval]\nlimit = 1"))
    env = {k: v for k, v in os.environ.items() if k not in _QUIET_ENVIRONMENT}
    env[INTERVAL_VARIABLE] = "0.5"
    log = tmp_path / "run.log"
    with log.open("w") as out:
        status = subprocess.run([sys.executable, "-m", "rro.cli", "run", str(config)], stdout=out,
                                stderr=subprocess.STDOUT, cwd=tmp_path, env=env, timeout=900).returncode
    text = log.read_text()
    assert status == 0, text[-3000:]
    assert "\x1b[" not in text and "\r" not in text and "━" not in text, text[-3000:]
    lines = {}
    for match in PROGRESS_LINE.finditer(text):
        lines.setdefault(match["stage"], []).append(match)
    figure = {"experts intercode-sql": "", "sft": "loss ", "eval intercode-sql": "avg reward ",
              "explore ipr": "pairs ", "dpo": "loss "}
    for stage, shown in figure.items():
        assert stage in lines, f"no progress line of {stage}:\n{text[-3000:]}"
        first, last = lines[stage][0], lines[stage][-1]
        assert first["done"] == "0" and last["done"] == last["total"], text
        assert "ETA 0:00:00" in last["rest"] and re.search(r"(/s|s/[a-z]+)  ETA", last["rest"])
        assert shown in last["rest"], last.group(0)
    assert not [line for line in LIBRARY_LINES if line in text]


def test_progress_lines_come_at_a_steady_interval_while_nothing_finishes(monkeypatch):
    monkeypatch.setenv(INTERVAL_VARIABLE, "0.1")
    log = io.StringIO()
    with StageProgress("explore rising", 4, "tasks", figures="pairs 0", console=Console(file=log)) as progress:
        time.sleep(0.75)  # one long chunk: nothing finishes, the lines still come
        progress.update(completed=4, figures="pairs 3")
    lines = log.getvalue().splitlines()
    assert len(lines) >= 6, lines  # the start, about 7 beats, the end
    assert all(PROGRESS_LINE.match(line) for line in lines), lines
    assert all("0/4 tasks" in line and "ETA" not in line for line in lines[:-1])  # no rate before anything finished
    assert "4/4 tasks" in lines[-1] and "ETA 0:00:00" in lines[-1] and lines[-1].endswith("pairs 3")


def test_an_interrupted_stage_prints_no_line_after_the_interruption(monkeypatch):
    monkeypatch.setenv(INTERVAL_VARIABLE, "60")
    log = io.StringIO()
    with pytest.raises(SystemExit):
        with StageProgress("eval intercode-sql", 200, "tasks", console=Console(file=log)):
            print("stopped by SIGTERM", file=log)  # what the CLI's handler prints before it raises
            raise SystemExit(143)
    lines = log.getvalue().splitlines()
    assert PROGRESS_LINE.match(lines[0]) and "0/200 tasks" in lines[0]
    assert lines[1:] == ["stopped by SIGTERM"], lines


def test_a_bad_progress_interval_fails_at_once(monkeypatch):
    monkeypatch.setenv(INTERVAL_VARIABLE, "soon")
    result = CliRunner().invoke(app, ["envs"])
    assert result.exit_code == 1 and INTERVAL_VARIABLE in result.output and "'soon'" in result.output
