"""A shared MariaDB server: `rro db up --port` on one machine, sessions from anywhere by host and port
(or socket), through an account that can only read; workers on Ray use it like the private one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mysql.connector
import pytest

from rro.config import EvalConfig
from rro.envs.base import spec
from rro.envs.intercode_sql import mariadb_backend
from rro.envs.intercode_sql.dataset import DUMP_FILE, load_tasks
from rro.envs.intercode_sql.env import IntercodeSqlEnv
from rro.evaluate import evaluate
from rro.fetch import require_cached
from rro.rollout import run_expert_episode
from tests.test_workers import _free_port, ray_or_skip, without_ray_token

pytestmark = pytest.mark.mariadb
RRO = [str(Path(sys.executable).with_name("rro"))]


@pytest.fixture(scope="module")
def shared_server(mariadb_server):
    """The session's server restarted with networking on a loopback port; private again afterwards."""
    port = _free_port()
    paths = mariadb_backend.up(require_cached(DUMP_FILE), port=port)
    yield paths, port
    mariadb_backend.up(require_cached(DUMP_FILE))


def expert_episode(env: IntercodeSqlEnv, task) -> tuple[list[str], float]:
    episode = run_expert_episode(spec("intercode-sql"), env, task, max_steps=10)
    return [step.observation for step in episode.steps], episode.reward


def test_sessions_by_host_port_and_socket_see_what_the_private_server_shows(shared_server):
    paths, port = shared_server
    assert mariadb_backend.status()["port"] == port
    tasks = load_tasks("train")[:4]
    private = IntercodeSqlEnv(backend="mariadb")
    by_port = IntercodeSqlEnv(backend="mariadb", mariadb_host="127.0.0.1", mariadb_port=port)
    by_socket = IntercodeSqlEnv(backend="mariadb", mariadb_socket=str(paths.socket))
    assert by_port.backend.connect["host"] == "127.0.0.1" and "unix_socket" not in by_port.backend.connect
    for task in tasks:
        reference = expert_episode(private, task)
        assert reference[1] == 1.0
        assert expert_episode(by_port, task) == reference
        assert expert_episode(by_socket, task) == reference
    # The account reached over the network is the read-only one: the server itself refuses a write
    # that got past the sandbox.
    session = by_port.backend.session(tasks[0].fields["db"])
    assert "denied" in session.execute("CREATE TABLE x (a INT)").error
    session.close()


def test_an_account_that_may_write_is_refused(shared_server, monkeypatch):
    paths, port = shared_server
    root = mysql.connector.connect(unix_socket=str(paths.socket), user="root", password="")
    cursor = root.cursor()
    cursor.execute("CREATE USER IF NOT EXISTS 'rro_writer'@'%' IDENTIFIED BY 'w'")
    cursor.execute("GRANT SELECT, INSERT ON `concert_singer`.* TO 'rro_writer'@'%'")
    root.close()
    monkeypatch.setenv("RRO_MARIADB_USER", "rro_writer")
    monkeypatch.setenv("RRO_MARIADB_PASSWORD", "w")
    with pytest.raises(mariadb_backend.MariaDBError, match="'rro_writer' may INSERT: agents need an account that can only read"):
        mariadb_backend.MariaDBBackend(require_cached(DUMP_FILE), host="127.0.0.1", port=port)


def test_an_unreachable_server_is_named():
    port = _free_port()
    with pytest.raises(mariadb_backend.MariaDBError, match=f"cannot reach the shared MariaDB server at 127.0.0.1:{port}"):
        mariadb_backend.MariaDBBackend(require_cached(DUMP_FILE), host="127.0.0.1", port=port)


def test_a_host_without_the_mariadb_backend_is_a_config_error(tmp_path):
    result = subprocess.run([*RRO, "eval", "--policy", "expert", "--mariadb-host", "127.0.0.1", "-o", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert "set backend = \"mariadb\" too" in result.stdout + result.stderr


def test_eval_on_two_ray_workers_against_the_shared_server(tmp_path, shared_server, tiny_policy):
    ray_or_skip()
    _, port = shared_server
    settings = dict(model="tiny-random", dtype="float32", limit=4, max_steps=2, max_new_tokens=8, temperature=1.0,
                    tasks_per_batch=2, backend="mariadb")
    reference = evaluate(EvalConfig(**settings, output=tmp_path / "private"), policy=tiny_policy)
    result = subprocess.run(
        [*RRO, "eval", "--model", "tiny-random", "--dtype", "float32", "--limit", "4", "--max-steps", "2",
         "--max-new-tokens", "8", "--temperature", "1.0", "--tasks-per-batch", "2", "--backend", "mariadb",
         "--mariadb-host", "127.0.0.1", "--mariadb-port", str(port), "--workers", "2", "-o", str(tmp_path / "shared")],
        capture_output=True, text=True, timeout=900, env=without_ray_token())
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((tmp_path / "shared" / "summary.json").read_text())
    drop = ("wall_seconds_this_run", "episode_wall_seconds", "env_options")
    assert {k: v for k, v in summary.items() if k not in drop} == {k: v for k, v in reference.items() if k not in drop}
    assert summary["env_options"] == {**reference["env_options"], "mariadb_host": "127.0.0.1", "mariadb_port": port}
    episodes = [json.loads(line) for line in (tmp_path / "shared" / "episodes.jsonl").read_text().splitlines()]
    assert len({e["task_id"] for e in episodes}) == 4


def test_the_server_is_where_a_run_happens_not_what_it_is(tmp_path):
    from rro.config import ConfigError, guard_output_dir

    def config(**options):
        return EvalConfig(policy="expert", backend="mariadb", output=tmp_path, **options)

    guard_output_dir(config(), tmp_path)
    guard_output_dir(config(mariadb_host="db.example", mariadb_port=3307), tmp_path)  # resumes
    with pytest.raises(ConfigError, match="scheme: 'by-query' -> 'by-db'"):
        guard_output_dir(config(scheme="by-db"), tmp_path)
