"""An oracle for InterCode-SQL: it knows the gold query and behaves like a careful agent.

It looks at the schema (the tables, then the columns of the tables the gold query reads), runs the
gold query and submits. Its turns use the same `Thought: ... / Action: ...` format as every agent.
"""

from __future__ import annotations

import re
from collections.abc import Generator

from rro.envs.base import Task
from rro.envs.intercode_sql.env import SUBMIT


def sql_turn(thought: str, statement: str) -> str:
    return f"Thought: {thought}\nAction: ```sql\n{statement}\n```"


def submit_turn(thought: str) -> str:
    return f"Thought: {thought}\nAction: {SUBMIT}"


def tables_read_by(gold: str, tables: list[str]) -> list[str]:
    """The database's tables named in `gold`, in order of first mention, as the schema spells them."""
    positions = {}
    for table in tables:
        match = re.search(rf"(?<![\w.]){re.escape(table)}(?!\w)", gold, flags=re.I)
        if match:
            positions[table] = match.start()
    return sorted(positions, key=positions.get)


def expert(task: Task, max_described_tables: int = 2) -> Generator[str, str, None]:
    gold = task.fields["gold"]
    yield sql_turn("I need to know which tables this database has.", "SHOW TABLES")
    for table in tables_read_by(gold, list(task.fields["db_tables"]))[:max_described_tables]:
        yield sql_turn(f"The question involves {table}; let me check its columns.", f"DESCRIBE {table}")
    yield sql_turn("Now I can write the query that answers the question.", gold)
    yield submit_turn("The query returned the answer, so I submit it.")
