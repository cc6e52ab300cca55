"""The InterCode-SQL environment: answer a question by running MySQL, then `submit`.

Actions are single MySQL statements or `submit`, which scores the result of the last executed
statement against the gold query's result with InterCode's reward and ends the episode.
Observations show results as MySQL's Python drivers return them (a list of row tuples) and errors
as `Error executing query: <message>`, cut to 350 characters.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from rro.envs.base import StepResult, Task
from rro.envs.intercode_sql.dataset import DUMP_FILE, ENV_NAME
from rro.envs.intercode_sql.reward import intercode_reward
from rro.envs.intercode_sql.spec import SUBMIT
from rro.envs.intercode_sql.sandbox import Refused, check_statement
from rro.envs.intercode_sql.sqlite_backend import ExecResult, SqliteBackend
from rro.fetch import require_cached

Backend = Literal["sqlite", "mariadb"]
BACKENDS: tuple[str, ...] = ("sqlite", "mariadb")
NO_RESULT_SET = "Query OK: the statement returned no result set."


@lru_cache(maxsize=8)
def _backend(name: Backend, time_limit_s: float, max_rows: int, mariadb_host: str | None = None,
             mariadb_port: int = 3306, mariadb_socket: Path | None = None):
    """Backends are shared by all environments of a process: they hold no per-episode state."""
    dump = require_cached(DUMP_FILE)
    if name == "sqlite":
        return SqliteBackend(dump, time_limit_s=time_limit_s, max_rows=max_rows)
    if name == "mariadb":
        from rro.envs.intercode_sql.mariadb_backend import MariaDBBackend

        return MariaDBBackend(dump, time_limit_s=time_limit_s, max_rows=max_rows, host=mariadb_host,
                              port=mariadb_port, socket=mariadb_socket)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")


# Gold results per (backend, db, gold): deterministic, and each is needed by every episode of its task.
_gold_cache: dict[tuple[str, str, str], list[tuple] | None] = {}


def gold_rows(backend, db: str, gold: str) -> list[tuple] | None:
    key = (backend.name, db, gold)
    if key not in _gold_cache:
        session = backend.session(db)
        try:
            result = session.execute(gold)
        finally:
            session.close()
        _gold_cache[key] = None if result.error else result.rows
    return _gold_cache[key]


def task_observation(task: Task) -> str:
    return f"Database: {task.fields['db']}\nQuestion: {task.instruction}"


def format_result(result: ExecResult, limit: int) -> str:
    if result.error is not None:
        text = f"Error executing query: {result.error}"
    elif result.rows is None:
        text = NO_RESULT_SET
    else:
        text = str(result.rows)
    return text[:limit]


class IntercodeSqlEnv:
    name = ENV_NAME

    def __init__(
        self,
        backend: Backend = "sqlite",
        time_limit_s: float = 5.0,
        max_rows: int = 10_000,
        observation_chars: int = 350,
        mariadb_host: str | None = None,
        mariadb_port: int = 3306,
        mariadb_socket: Path | str | None = None,
    ):
        self.backend = _backend(backend, float(time_limit_s), int(max_rows), mariadb_host, int(mariadb_port),
                                None if mariadb_socket is None else Path(mariadb_socket))
        self.observation_chars = observation_chars
        self.task: Task | None = None
        self.session = None
        self.last_rows: list[tuple] | None = None
        self.done = False

    def reset(self, task: Task) -> str:
        self.close()
        self.task = task
        self.session = self.backend.session(task.fields["db"])
        self.last_rows = None  # nothing executed yet: submitting now scores 0
        self.done = False
        return task_observation(task)

    def step(self, action: str) -> StepResult:
        if self.task is None or self.session is None:
            raise RuntimeError("call reset(task) before step(action)")
        if self.done:
            return StepResult("The episode has ended.", 0.0, True, {"error": "episode already ended"})
        if action.strip().lower() == SUBMIT:
            return self._submit()
        try:
            statement = check_statement(action)
        except Refused as refusal:
            result = ExecResult(error=str(refusal))
        else:
            result = self.session.execute(statement)
        self.last_rows = None if result.error is not None else result.rows
        info = {
            "error": result.error,
            "rows": None if result.rows is None else len(result.rows),
            "truncated": result.truncated,
        }
        return StepResult(format_result(result, self.observation_chars), 0.0, False, info)

    def _submit(self) -> StepResult:
        assert self.task is not None
        gold = gold_rows(self.backend, self.task.fields["db"], self.task.fields["gold"])
        reward = intercode_reward(self.last_rows, gold)
        self.done = True
        info = {"submitted": True, "gold_errored": gold is None}
        return StepResult(f"Submitted. Reward: {reward}", reward, True, info)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
