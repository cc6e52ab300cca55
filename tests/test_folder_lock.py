"""One command at a time per output folder, through the real command line (docs/guarantees.md)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rro.cli import app

runner = CliRunner()
RRO = str(Path(sys.executable).with_name("rro"))


def explore_command(out: Path) -> list[str]:
    return [RRO, "explore", "--model", "tiny-random", "--dtype", "float32", "--limit", "3", "--tasks-per-batch", "1",
            "--rollouts", "1", "--max-candidates", "2", "--max-steps", "1", "--max-new-tokens", "4", "-o", str(out)]


def task_ids(out: Path) -> list[str]:
    walks = out / "walks.jsonl"
    return [json.loads(line)["task_id"] for line in walks.read_text().splitlines() if line.strip()] if walks.exists() else []


def test_two_explorations_at_once_then_a_sigkill(tmp_path, tiny_policy):
    """Two `rro explore` started together into one folder: one runs, the other stops at once naming
    it. The one that runs is killed (SIGKILL) mid-run and leaves its lock behind: the rerun takes it
    over, says so, and finishes with every task once."""
    out = tmp_path / "explore"
    both = [subprocess.Popen(explore_command(out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    deadline = time.time() + 600
    while all(run.poll() is None for run in both) and time.time() < deadline:
        time.sleep(0.05)
    loser, = [run for run in both if run.poll() is not None]
    winner, = [run for run in both if run is not loser]
    refused = loser.stderr.read()
    assert loser.returncode == 1 and "Traceback" not in refused, refused
    assert f"{out} is in use by another rro command: pid {winner.pid} on host {socket.gethostname()}, started " in refused

    while winner.poll() is None and time.time() < deadline and not task_ids(out):
        time.sleep(0.05)
    assert winner.poll() is None, f"ended before it could be killed: {winner.stderr.read()[-2000:]}"
    winner.send_signal(signal.SIGKILL)
    winner.wait(timeout=60)
    assert json.loads((out / "rro.lock").read_text())["pid"] == winner.pid  # left behind
    assert 1 <= len(task_ids(out)) < 3

    rerun = subprocess.run(explore_command(out), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"took over {out / 'rro.lock'}, left by pid {winner.pid} on host {socket.gethostname()}" in rerun.stderr
    ids = task_ids(out)
    assert len(ids) == 3 and len(set(ids)) == 3  # every task once
    assert not (out / "rro.lock").exists()


@pytest.fixture
def held(tmp_path):
    """A folder held by another live process, as a running command holds its output folder."""
    folder = tmp_path / "held"
    code = "import sys, time\nfrom rro.folder_lock import hold_folder\nwith hold_folder(sys.argv[1], 'rro explore ...'):\n" \
           "    print('held', flush=True)\n    time.sleep(600)\n"
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert holder.stdout.readline() == "held\n"
    yield folder, holder.pid
    holder.kill()
    holder.wait()


@pytest.mark.parametrize("command", [
    ["eval", "--policy", "expert"],
    ["explore", "--model", "tiny-random"],
    ["sft", "--model", "tiny-random", "--data", "experts.jsonl"],
    ["dpo", "--model", "tiny-random", "--pairs", "pairs.jsonl"],
    ["report"],
    ["run"],
])
def test_every_writing_command_refuses_a_held_folder(command, held, tmp_path):
    folder, pid = held
    if command == ["report"]:
        run = tmp_path / "run"
        run.mkdir()
        (run / "results.json").write_text(json.dumps({"run": str(run), "methods": []}))
        command = ["report", str(run)]
    if command == ["run"]:
        config = tmp_path / "run.toml"
        config.write_text(f'output = "{folder}"\nmodel = "tiny-random"\n')
        command = ["run", str(config)]
    else:
        command = [*command, "-o", str(folder)]
    before = sorted(os.listdir(folder))
    result = runner.invoke(app, command)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert f"{folder} is in use by another rro command: pid {pid} on host {socket.gethostname()}" in result.output
    assert "(rro explore ...)" in result.output
    assert sorted(os.listdir(folder)) == before  # nothing written


def test_a_lock_from_another_machine_is_named_with_how_to_break_it(tmp_path):
    out = tmp_path / "eval"
    out.mkdir()
    lock = out / "rro.lock"
    lock.write_text(json.dumps({"pid": 4242, "host": "gpu-node-17", "started": "2026-01-02 03:04:05 UTC",
                                "command": "rro eval -o eval"}))
    result = runner.invoke(app, ["eval", "--policy", "expert", "--limit", "1", "-o", str(out)])
    assert result.exit_code == 1, result.output
    assert "locked by a command on another machine: pid 4242 on host gpu-node-17, started 2026-01-02 03:04:05 UTC" \
        in result.output
    assert f"if it does not, delete {lock} and rerun" in result.output
    assert sorted(os.listdir(out)) == ["rro.lock"]
    lock.unlink()  # as the message says
    assert runner.invoke(app, ["eval", "--policy", "expert", "--limit", "1", "-o", str(out)]).exit_code == 0
    assert not lock.exists()


def test_holder_files_left_by_a_kill_while_claiming_are_removed(tmp_path):
    from rro.folder_lock import hold_folder

    here, dead = socket.gethostname(), _a_pid_that_does_not_run()
    old = time.time() - 3600
    left = tmp_path / f".rro.lock.{here}.{dead}.123"  # killed between writing it and linking it
    running = tmp_path / f".rro.lock.{here}.{os.getpid()}.456"  # a claim of a live process
    fresh = tmp_path / f".rro.lock.{here}.{dead}.789"  # may be a claim in progress: too young to judge
    elsewhere = tmp_path / f".rro.lock.other-host.{dead}.1"  # this machine cannot see that pid
    for path in (left, running, fresh, elsewhere):
        path.write_text("{}\n")
    for path in (left, running, elsewhere):
        os.utime(path, (old, old))
    with hold_folder(tmp_path, command="test"):
        assert (tmp_path / "rro.lock").exists()
    assert not left.exists() and running.exists() and fresh.exists() and elsewhere.exists()


def _a_pid_that_does_not_run() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid
