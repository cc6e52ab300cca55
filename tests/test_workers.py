"""Exploration and evaluation spread over Ray workers, and the determinism they rest on.

Every comparison is record for record against one uninterrupted in-process run (timings aside):
seeds come from what is sampled (task, state, sample index), so resuming, chunking and the number
of workers do not change what the tiny random model draws at T = 1. One local Ray instance is
shared by the module; the driver-kill and cluster tests run `rro` in subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from rro.agent.trajectory import read_episodes
from rro.config import EvalConfig, ExploreConfig, PipelineConfig, load_config
from rro.evaluate import evaluate
from rro.explore import explore
from tests.interrupt import started_until_first_walk
from tests.toy import TASKS, toy_task

# Small enough for CI, large enough that the model's draws show: 2 candidates, 2 rollouts each.
INTERCODE = dict(model="tiny-random", dtype="float32", limit=4, rollouts=2, max_candidates=2, max_steps=2,
                 max_new_tokens=8, tasks_per_batch=2)
TOY = dict(env="toy", model="tiny-random", dtype="float32", icl_shots=0, rollouts=2, max_candidates=2, max_steps=2,
           max_new_tokens=6, tasks_per_batch=1)
RRO = [str(Path(sys.executable).with_name("rro"))]


def ray_or_skip():
    try:
        import ray
    except ImportError:
        if os.environ.get("RRO_REQUIRE_RAY") == "1":
            pytest.fail("RRO_REQUIRE_RAY=1 but Ray is not installed (pip install 'rro[ray]')")
        pytest.skip("Ray is not installed (pip install 'rro[ray]')")
    return ray


@pytest.fixture(scope="module")
def local_ray(rro_home):
    """One local Ray instance for the module's in-process runs (start-up takes seconds)."""
    ray = ray_or_skip()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def walks(out: Path) -> dict[str, dict]:
    """walks.jsonl by task, without timings; fails on a duplicated task."""
    records = {}
    for line in (out / "walks.jsonl").read_text().splitlines():
        record = json.loads(line)
        record.pop("wall_s")
        for step in record["steps"]:
            step.pop("wall_s")
        assert record["task_id"] not in records, f"task {record['task_id']} written twice"
        records[record["task_id"]] = record
    return records


def same_outputs(out: Path, reference: Path) -> None:
    assert walks(out) == walks(reference)
    assert (out / "pairs.jsonl").read_text() == (reference / "pairs.jsonl").read_text()
    without_time = lambda path: {k: v for k, v in json.loads(path.read_text()).items() if k != "wall_seconds"}  # noqa: E731
    assert without_time(out / "stats.json") == without_time(reference / "stats.json")


@pytest.fixture(scope="module")
def fresh_policy():
    """The model as a worker loads it, from its checkpoint: the session's shared policy object has
    served many other tests' calls by now, and a worker's draws are compared to this one's token for
    token."""
    from rro.policy.hf import HFPolicy

    return HFPolicy("tiny-random", dtype="float32")


@pytest.fixture(scope="module")
def intercode_reference(tmp_path_factory, fresh_policy) -> Path:
    """One uninterrupted exploration in this process, with one worker."""
    out = tmp_path_factory.mktemp("intercode") / "reference"
    explore(ExploreConfig(**INTERCODE, output=out), policy=fresh_policy)
    records = walks(out)
    # The model's draws really vary: distinct candidates, and rollouts of different lengths.
    turns = [turn for record in records.values() for turn in record["turns"]]
    assert len(set(turns)) == len(turns) > 1
    assert len({step["rollout_prompt_tokens"] for record in records.values() for step in record["steps"]}) > 1
    return out


def test_a_killed_and_resumed_explore_equals_an_uninterrupted_one(tmp_path, intercode_reference, fresh_policy,
                                                                  monkeypatch):
    import rro.explore.run as explore_run

    real_walk, calls = explore_run.walk_tasks, []

    def killed_in_the_second_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_walk(*args, **kwargs)

    monkeypatch.setattr(explore_run, "walk_tasks", killed_in_the_second_chunk)
    config = ExploreConfig(**INTERCODE, output=tmp_path / "cut")
    with pytest.raises(KeyboardInterrupt):
        explore(config, policy=fresh_policy)
    assert len(walks(tmp_path / "cut")) == 2
    monkeypatch.setattr(explore_run, "walk_tasks", real_walk)
    explore(config, policy=fresh_policy)  # a fresh value estimator: nothing carries over but the files
    same_outputs(tmp_path / "cut", intercode_reference)


def test_two_local_workers_explore_intercode_sql_as_one_process(tmp_path, local_ray, intercode_reference):
    explore(ExploreConfig(**INTERCODE, workers=2, output=tmp_path / "two"))
    same_outputs(tmp_path / "two", intercode_reference)
    assert (tmp_path / "two" / "steps.jsonl").read_text().count("\n") == \
        (intercode_reference / "steps.jsonl").read_text().count("\n")


@pytest.fixture(scope="module")
def toy_tasks():
    TASKS.clear()
    for task_id in "123456":
        toy_task(task_id, {"a": -0.5, "b": 0.0, "c": 0.4, "d": 0.8})
    yield
    TASKS.clear()


@pytest.fixture(scope="module")
def toy_reference(tmp_path_factory, toy_tasks, fresh_policy) -> Path:
    out = tmp_path_factory.mktemp("toy") / "reference"
    explore(ExploreConfig(**TOY, output=out), policy=fresh_policy)
    return out


def _busy_workers() -> list[psutil.Process]:
    """This user's Ray actor processes that are running a chunk now (Ray titles them so)."""
    busy = []
    for process in psutil.process_iter(["cmdline", "uids"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if "TaskWorker.run" in cmdline and process.info["uids"] and process.info["uids"].real == os.getuid():
            busy.append(process)
    return busy


def test_a_killed_worker_s_chunk_is_run_again_elsewhere(tmp_path, local_ray, toy_reference):
    """The toy environment (a plug-in registered by the test module) on two workers; one is killed
    once the first chunk is written, in the middle of another chunk."""
    out = tmp_path / "killed"
    killed: list[int] = []

    def kill_one_worker():
        deadline = time.time() + 600
        while time.time() < deadline and not killed:
            if (out / "walks.jsonl").exists() and (out / "walks.jsonl").read_text().count("\n") >= 1:
                for process in _busy_workers():
                    process.send_signal(signal.SIGKILL)
                    killed.append(process.pid)
                    break
            time.sleep(0.05)

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    explore(ExploreConfig(**TOY, workers=2, output=out))
    killer.join(timeout=5)
    assert killed, "no busy worker was found to kill"
    records = walks(out)  # fails on a duplicate
    assert sorted(records) == list("123456")
    same_outputs(out, toy_reference)


def _write_toml(path: Path, settings: dict) -> Path:
    lines = [f"{key} = {json.dumps(str(value) if isinstance(value, Path) else value)}" for key, value in settings.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_killed_driver_is_resumed_by_rerunning(tmp_path, intercode_reference):
    """`rro explore` on two local workers, the whole process group killed mid-run, then rerun.
    One-task chunks here against the reference's two: per-row seeds make the batches irrelevant."""
    ray_or_skip()
    out = tmp_path / "driver"
    config = _write_toml(tmp_path / "explore.toml", {**INTERCODE, "tasks_per_batch": 1, "workers": 2, "output": out})
    driver = started_until_first_walk([*RRO, "explore", "-c", str(config)], out, timeout=600, start_new_session=True)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver, and the local Ray instance it started
    driver.wait()
    assert 1 <= len(walks(out)) < 4
    rerun = subprocess.run([*RRO, "explore", "-c", str(config)], capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    same_outputs(out, intercode_reference)


# Ray keeps one cluster token per user (~/.ray/auth_token) that any `ray start` may rewrite; the
# test cluster on this machine runs without one rather than race other Ray users for that file.
def without_ray_token() -> dict[str, str]:
    return {**os.environ, "RAY_AUTH_MODE": "disabled"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ray_cluster(tmp_path):
    """A one-node Ray cluster as `ray start --head` makes one, on a loopback address (Ray resolves
    127.0.0.1 to the machine's own address), on ports of its own; killed at the end."""
    ray_or_skip()
    port, dashboard = _free_port(), _free_port()
    log = tmp_path / "ray-start.log"
    session = tempfile.mkdtemp(prefix="ray-")  # short: Ray's Unix socket paths must fit 107 bytes
    with open(log, "w") as output:
        head = subprocess.Popen(
            [str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--num-cpus", "2",
             "--node-ip-address", "127.0.0.1", "--port", str(port), "--include-dashboard", "false",
             "--dashboard-port", str(dashboard),
             "--temp-dir", session, "--disable-usage-stats"],
            start_new_session=True, stdout=output, stderr=subprocess.STDOUT, env=without_ray_token())
    try:
        deadline = time.time() + 120
        while "--block" not in log.read_text():  # printed once the cluster is up
            assert head.poll() is None and time.time() < deadline, f"ray start failed:\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        # The cluster's processes share the session of `ray start`; a graceful stop drains for 30 s.
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        shutil.rmtree(session, ignore_errors=True)


def test_eval_on_two_workers_of_a_started_cluster(tmp_path, ray_cluster, fresh_policy):
    settings = dict(model="tiny-random", dtype="float32", limit=4, max_steps=2, max_new_tokens=8, temperature=1.0,
                    tasks_per_batch=2)
    reference = evaluate(EvalConfig(**settings, output=tmp_path / "reference"), policy=fresh_policy)
    config = _write_toml(tmp_path / "eval.toml", {**settings, "workers": 2, "ray_address": ray_cluster,
                                                   "output": tmp_path / "cluster"})
    result = subprocess.run([*RRO, "eval", "-c", str(config)], capture_output=True, text=True, timeout=900,
                            env=without_ray_token())
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "cluster" / "summary.json").read_text())
    drop = ("wall_seconds_this_run", "episode_wall_seconds")
    assert {k: v for k, v in summary.items() if k not in drop} == {k: v for k, v in reference.items() if k not in drop}

    def episodes(out):
        return {e.task_id: (e.messages, e.reward, e.termination, [s.generated_tokens for s in e.steps])
                for e in read_episodes(out / "episodes.jsonl")}

    assert episodes(tmp_path / "cluster") == episodes(tmp_path / "reference")
    assert len(set(json.dumps(m) for m, *_ in episodes(tmp_path / "cluster").values())) == 4  # sampled, distinct


def test_a_wrong_ray_address_fails_fast_naming_the_field(tmp_path):
    from rro.config import ConfigError
    from rro.workers import run_on_workers

    ray_or_skip()
    with pytest.raises(ConfigError, match="ray_address: nothing answers at 127.0.0.1:"):
        list(run_on_workers(lambda: None, [[]], workers=2, ray_address=f"127.0.0.1:{_free_port()}"))


def test_rro_run_explores_on_two_workers(tmp_path, local_ray):
    from rro.pipeline import run_pipeline

    run = tmp_path / "run"
    config_file = tmp_path / "run.toml"
    config_file.write_text(f"""
output = "{run}"
model = "tiny-random"
strategies = ["rising"]
[experts]
limit = 2
[sft]
limit = 2
epochs = 1
batch_size = 2
gradient_accumulation_steps = 1
precision = "fp32"
[eval]
limit = 2
max_steps = 2
max_new_tokens = 8
dtype = "float32"
[explore]
limit = 2
rollouts = 1
max_candidates = 2
max_steps = 2
max_new_tokens = 8
dtype = "float32"
tasks_per_batch = 1
workers = 2
[dpo]
epochs = 1
precision = "fp32"
""")
    run_pipeline(load_config(PipelineConfig, config_file))
    explored = run / "rising" / "iter1" / "explore"
    assert json.loads((explored / "config.json").read_text())["workers"] == 2
    assert sorted(walks(explored)) == sorted(t.id for t in ExploreConfig(split="train", limit=2, output=explored).tasks())
    assert json.loads((explored / "stats.json").read_text())["tasks"] == 2
