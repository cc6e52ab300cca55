"""InterCode-SQL's own parts of the command line: its rows of `rro data splits` (every split scheme,
with the test golds that leak from train) and the `rro db` commands of its private MariaDB server.

Imported only when the command line is built or the command runs; the SQL engines and the dataset
load inside the commands.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from rro.cli_errors import PlainErrorsTyper

console = Console(stderr=True)


def split_table() -> tuple[list[str], list[list[str]]]:
    """Task counts of every split scheme, and how many test golds are also train golds (a leak)."""
    from rro.envs.intercode_sql.dataset import SPLIT_SCHEMES, load_tasks, normalize_sql

    rows = []
    for scheme in SPLIT_SCHEMES:
        train, test = load_tasks("train", scheme), load_tasks("test", scheme)
        train_golds = {normalize_sql(t.fields["gold"]) for t in train}
        leaks = sum(normalize_sql(t.fields["gold"]) in train_golds for t in test)
        rows.append([scheme, str(len(train)), str(len(test)), str(leaks), str(len({t.fields["db"] for t in test}))])
    return ["scheme", "train", "test", "test golds also in train", "test databases"], rows


def db_commands() -> typer.Typer:
    """`rro db up|down|status`: the private MariaDB server behind the faithful backend."""
    db_app = PlainErrorsTyper(help="The private MariaDB server for InterCode-SQL's faithful backend.",
                              no_args_is_help=True)

    @db_app.command("up")
    def db_up(
        port: Annotated[int | None, typer.Option(help="Also listen on this TCP port, for workers on other machines "
                                                      "(a shared server; default: Unix socket only).")] = None,
        bind_address: Annotated[str, typer.Option(help="Where the port listens: 127.0.0.1 (this machine) or "
                                                       "0.0.0.0 (every interface).")] = "127.0.0.1",
    ) -> None:
        """Start the MariaDB server (initialise it and load the dump on first use)."""
        from rro.envs.intercode_sql import mariadb_backend
        from rro.envs.intercode_sql.dataset import DUMP_FILE
        from rro.fetch import require_cached

        paths = mariadb_backend.up(require_cached(DUMP_FILE), port=port, bind_address=bind_address)
        where = f"{paths.socket}" if port is None else f"{paths.socket} and {bind_address}:{port}"
        console.print(f"[green]MariaDB is up[/green] on {escape(where)}")

    @db_app.command("down")
    def db_down() -> None:
        """Stop the private MariaDB server."""
        from rro.envs.intercode_sql import mariadb_backend

        console.print("stopped" if mariadb_backend.down() else "not running")

    @db_app.command("status")
    def db_status() -> None:
        """Show whether the private MariaDB server runs, and where."""
        from rro.envs.intercode_sql import mariadb_backend

        info = mariadb_backend.status()
        print(json.dumps(info, indent=2))
        if not info["running"]:
            raise typer.Exit(code=3)

    return db_app
