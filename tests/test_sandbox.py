"""Agents' SQL cannot write, touch files, run several statements, or run forever — on either backend."""

import os
import time

import pytest

from rro.envs import make
from rro.envs.intercode_sql.dataset import task_by_id

TASK = 0  # poker_player

REFUSED = [
    "INSERT INTO people VALUES (99, 'X', 'Y', '1990', 1.8)",
    "UPDATE people SET Name = 'X'",
    "DELETE FROM people",
    "DROP TABLE people",
    "CREATE TABLE x (a int)",
    "CREATE TEMPORARY TABLE x (a int)",
    "ALTER TABLE people ADD COLUMN x int",
    "TRUNCATE TABLE people",
    "REPLACE INTO people VALUES (1, 'X', 'Y', '1990', 1.8)",
    "ATTACH DATABASE '/tmp/evil.db' AS evil",
    "PRAGMA writable_schema = 1",
    "SELECT count(*) FROM people; DELETE FROM people",
    "SELECT 1; SELECT 2",
    "SELECT LOAD_FILE('/etc/passwd')",
    "SELECT * FROM people INTO OUTFILE '/tmp/people.txt'",
    "SELECT * INTO DUMPFILE '/tmp/people.bin' FROM people",
    "LOAD DATA INFILE '/etc/passwd' INTO TABLE people",
    "SET GLOBAL max_connections = 1",
    "GRANT ALL ON *.* TO 'rro_agent'@'localhost'",
]


@pytest.fixture
def env(backend):
    environment = make("intercode-sql", backend=backend, time_limit_s=1.0)
    environment.reset(task_by_id(TASK))
    yield environment
    environment.close()


def snapshot(env) -> str:
    return env.step("SELECT * FROM people ORDER BY People_ID")[0] + env.step("SHOW TABLES")[0]


@pytest.mark.parametrize("statement", REFUSED)
def test_refused_and_nothing_changes(env, statement):
    before = snapshot(env)
    observation, reward, done, info = env.step(statement)
    assert observation.startswith("Error executing query: ")
    assert info["error"] and not done
    assert snapshot(env) == before
    assert not os.path.exists("/tmp/people.txt")


def test_backends_refuse_writes_even_without_the_statement_check(backend):
    """Defence in depth: the engine itself refuses, not only our check in front of it."""
    environment = make("intercode-sql", backend=backend)
    environment.reset(task_by_id(TASK))
    result = environment.session.execute("DELETE FROM people")
    environment.close()
    assert result.error and ("not authorized" in result.error or "denied" in result.error)


def test_runaway_query_stops_at_the_time_limit(env):
    env.step("USE world_1")  # city is the largest table (4079 rows)
    started = time.monotonic()
    observation, *_ = env.step("SELECT count(*) FROM city AS a, city AS b, city AS c")
    elapsed = time.monotonic() - started
    assert observation == "Error executing query: Query execution was interrupted (max_statement_time exceeded)"
    assert elapsed < 30  # the limit is 1 s; this only guards against a query that never stops
    assert env.step("SELECT count(*) FROM city")[0] == "[(4079,)]"  # the session is still usable


def test_large_results_are_capped(backend):
    environment = make("intercode-sql", backend=backend, max_rows=100)
    environment.reset(task_by_id(TASK))
    environment.step("USE world_1")
    _, _, _, info = environment.step("SELECT * FROM city")
    assert info["rows"] == 100 and info["truncated"]
    assert environment.step("SELECT count(*) FROM city")[0] == "[(4079,)]"
    environment.close()
