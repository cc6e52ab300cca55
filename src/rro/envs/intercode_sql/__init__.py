"""InterCode-SQL on MariaDB or SQLite: Spider-dev questions answered with MySQL statements.

The environment's declaration is `rro.envs.intercode_sql.spec.SPEC`. The names below load on first
use, so that importing the declaration stays cheap.
"""

from importlib import import_module

_LAZY = {"IntercodeSqlEnv": "env", "load_tasks": "dataset", "expert": "expert"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"rro.envs.intercode_sql.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_LAZY)
