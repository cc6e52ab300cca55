"""What rro needs to know about InterCode-SQL: its settings, the agent's instruction and worked
example, how an agent turn's action is read, and where tasks, environments and the oracle come from.

Kept light (the SQL engines, sqlglot and the dataset load on first use) so that listing the
environments, or building the command line, costs nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rro.envs.base import EnvSpec, Example, ParsedAction

NAME = "intercode-sql"
SUBMIT = "submit"


# Every stage of a run talks to the same server; which server is where the run happens, not what it
# produces (the same dump behind it), so a run may resume against another.
SHARED_SERVER = {"run_wide": True, "placement": True}


class IntercodeSqlOptions(BaseModel):
    """InterCode-SQL's settings: which tasks (scheme, dbs, hardness, include_empty_dbs) and which
    SQL engine runs the agent's statements (backend)."""

    model_config = ConfigDict(extra="forbid")

    scheme: Literal["by-query", "by-db", "records"] = Field(
        default="by-query", description="Split scheme: by-query (leak-free), by-db, or records (InterCode's order; leaky).",
        json_schema_extra={"run_wide": True})  # train and test must be split alike in every stage
    dbs: list[str] = Field(default_factory=list, description="Only tasks on this database.",
                           json_schema_extra={"cli": ["--db"]})
    hardness: list[Literal["easy", "medium", "hard", "extra"]] = Field(
        default_factory=list, description="Only tasks of this hardness.")
    include_empty_dbs: bool = Field(
        default=False, description="Keep wta_1, whose tables hold no rows (every gold result is empty).")
    backend: Literal["sqlite", "mariadb"] = Field(
        default="sqlite", description="sqlite (embedded) or mariadb (faithful; needs `rro db up`).",
        json_schema_extra={"run_wide": True})
    # A shared server (workers on several machines): unset, mariadb means this machine's private one.
    mariadb_host: str | None = Field(
        default=None, description="A shared MariaDB server's host (`rro db up --port` there); account from "
        "RRO_MARIADB_USER / RRO_MARIADB_PASSWORD (default rro_agent), which must only read.",
        json_schema_extra=SHARED_SERVER)
    mariadb_port: int = Field(default=3306, description="The shared MariaDB server's port.",
                              json_schema_extra=SHARED_SERVER)
    mariadb_socket: Path | None = Field(
        default=None, description="A shared MariaDB server's Unix socket (instead of host and port).",
        json_schema_extra=SHARED_SERVER)

    @model_validator(mode="after")
    def _shared_server_needs_mariadb(self):
        if (self.mariadb_host is not None or self.mariadb_socket is not None) and self.backend != "mariadb":
            raise ValueError("mariadb_host / mariadb_socket name a MariaDB server: set backend = \"mariadb\" too")
        return self


INSTRUCTION = (
    "You are a SQL agent answering a question about a MySQL database. Work step by step: "
    "each turn, write one line 'Thought: ' with your reasoning, then 'Action: ' followed by "
    "either one MySQL statement in a ```sql code block, or the word submit.\n"
    "You can inspect the database (SHOW TABLES, DESCRIBE table) and run SELECT queries; the "
    "database is read-only. After each statement you see its result as a list of rows, or an "
    "error. When your last query's result answers the question, reply with 'Action: submit': "
    "the result of your last query is your answer."
)
FORMAT_HELP = (
    "Reply with 'Thought: <your reasoning>' and then 'Action: ' followed by one MySQL statement "
    "in a ```sql code block, or 'Action: submit'."
)
# Given as real chat turns: measured with SmolLM2-135M on 8 test tasks, greedy first turns were
# valid 5 times of 8 with the example as turns, 1 with the same example pasted into the instruction.
EXAMPLE = Example(
    observation="Database: shop\nQuestion: How many customers live in Paris?",
    steps=(
        ("Thought: I need to know which tables this database has.\nAction: ```sql\nSHOW TABLES\n```",
         "[('customer',), ('orders',)]"),
        ("Thought: The question involves customer; let me check its columns.\nAction: ```sql\nDESCRIBE customer\n```",
         "[('id', 'int(11)', 'NO', 'PRI', None, ''), ('name', 'text', 'YES', '', None, ''), "
         "('city', 'text', 'YES', '', None, '')]"),
        ("Thought: Now I can write the query that answers the question.\n"
         "Action: ```sql\nSELECT count(*) FROM customer WHERE city = 'Paris'\n```",
         "[(42,)]"),
        ("Thought: The query returned the answer, so I submit it.\nAction: submit", None),
    ),
)

_FENCED = re.compile(r"```[ \t]*(?:sql|mysql)?[ \t]*\n?(.*?)```", re.I | re.S)
_SUBMIT = re.compile(r"submit\b", re.I)


def parse_action(text: str) -> ParsedAction:
    """The content of one fenced code block, or the word `submit`."""
    rest = text.lstrip()
    if rest.startswith("```"):
        block = _FENCED.match(rest)
        if block is None:
            return ParsedAction(None, "the ```sql code block is not closed")
        statement = block.group(1).strip()
        if not statement:
            return ParsedAction(None, "the code block is empty")
        return ParsedAction(statement, None, rest[block.end():].strip())
    if submit := _SUBMIT.match(text):
        return ParsedAction(SUBMIT, None, text[submit.end():].strip())
    return ParsedAction(None, "the action must be a ```sql code block or submit")


def make(**options):
    from rro.envs.intercode_sql.env import IntercodeSqlEnv

    return IntercodeSqlEnv(**options)


def load_tasks(split="test", **options):
    from rro.envs.intercode_sql.dataset import load_tasks

    return load_tasks(split, **options)


def expert(task):
    from rro.envs.intercode_sql.expert import expert

    return expert(task)


def split_table():
    from rro.envs.intercode_sql.commands import split_table

    return split_table()


def db_commands():
    from rro.envs.intercode_sql.commands import db_commands

    return db_commands()


def data_files():
    from rro.envs.intercode_sql.dataset import DUMP_FILE, TASKS_FILE

    return TASKS_FILE, DUMP_FILE


SPEC = EnvSpec(
    name=NAME,
    make=make,
    load_tasks=load_tasks,
    expert=expert,
    terminal_actions=frozenset({SUBMIT}),
    instruction=INSTRUCTION,
    format_help=FORMAT_HELP,
    parse_action=parse_action,
    example=EXAMPLE,
    reward_range=(-1.0, 1.0),
    options=IntercodeSqlOptions,
    task_options=("scheme", "dbs", "hardness", "include_empty_dbs"),
    splits=("train", "test", "all"),
    split_table=split_table,
    commands={"db": db_commands},
    data_files=data_files,
    description="Spider-dev questions answered with MySQL statements (InterCode), on SQLite or MariaDB.",
    # Spider's share-alike licence carries over to anything that quotes its questions and databases.
    data_license="cc-by-sa-4.0",
    data_license_note=("InterCode-SQL (MIT licence) packages the dev set of Spider (Yu et al. 2018), whose "
                       "questions and databases are under CC BY-SA 4.0."),
)
