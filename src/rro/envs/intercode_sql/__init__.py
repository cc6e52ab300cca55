"""InterCode-SQL on MariaDB or SQLite: Spider-dev questions answered with MySQL statements."""

from rro.envs.base import EnvSpec, register
from rro.envs.intercode_sql.dataset import ENV_NAME, load_tasks
from rro.envs.intercode_sql.env import SUBMIT, IntercodeSqlEnv
from rro.envs.intercode_sql.expert import expert

register(
    EnvSpec(
        name=ENV_NAME,
        make=IntercodeSqlEnv,
        load_tasks=load_tasks,
        expert=expert,
        terminal_actions=frozenset({SUBMIT}),
        task_options=("scheme", "dbs", "hardness", "include_empty_dbs"),
        env_options=("backend",),
    )
)

__all__ = ["IntercodeSqlEnv", "load_tasks", "expert"]
