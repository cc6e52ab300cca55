"""A clean terminal: rro's own progress, and none of the libraries' internals unless asked (-v)."""

from __future__ import annotations

import re
import sys

from typer.testing import CliRunner

from rro import __version__
from rro.cli import app
from tests.conftest import run_in_terminal

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
