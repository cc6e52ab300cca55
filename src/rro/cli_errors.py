"""The command line's one error path: an expected failure is one plain line, no traceback.

Every `rro` command runs inside `plain_errors`. A failure the user can act on (a bad setting, a
missing or damaged file, a folder in use, an OS error such as a full disk or an output path under a
file, a model or server that cannot be reached) prints `error: WHAT (what to do)` on stderr and
exits with status 1; `rro --verbose` adds the traceback. The text is printed as it is, never read
as Rich markup, so a path or value with `[/...]` in it prints unchanged. Anything else is a bug in
rro and keeps its traceback.
"""

from __future__ import annotations

import errno
import functools
import sqlite3
import traceback
from collections.abc import Callable
from typing import Any

import click
import typer
from rich.console import Console
from rich.text import Text

console = Console(stderr=True)

# Failures of the user's input, files, machine or servers. ValueError covers the config models'
# errors and bad record files, RuntimeError rro's data, policy and lock errors (DataError,
# PolicyError, FolderLocked) and the libraries' own (e.g. a GPU out of memory).
EXPECTED = (OSError, ValueError, RuntimeError, sqlite3.Error)

_OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free space, then rerun the same command (finished work is kept)",
    errno.EDQUOT: "the disk quota is used up: free space, then rerun the same command (finished work is kept)",
    errno.EACCES: "permission denied: choose a path you may write, or change its permissions",
    errno.EPERM: "not permitted: choose a path you may write, or change its permissions",
    errno.EROFS: "the file system is read-only: choose another path",
    errno.ENOTDIR: "a part of this path is a file, not a folder: choose another path",
    errno.EEXIST: "a file is in the way where a folder is needed: choose another path",
    errno.EISDIR: "this is a folder where a file is needed",
    errno.ENOENT: "no such file or folder",
}


def fail(message: str) -> None:
    """Print `error: message` (as plain text) and end the command with exit status 1."""
    console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)  # one line, unwrapped
    raise typer.Exit(code=1)


def describe(err: BaseException) -> str:
    """The one line that says what failed and what to do."""
    if isinstance(err, OSError) and err.filename is not None:
        where = f"{err.filename}" + (f" -> {err.filename2}" if err.filename2 is not None else "")
        advice = _OS_ADVICE.get(err.errno, err.strerror or str(err))
        from rro.fetch import rro_home  # a path under RRO_HOME: the cache, not the user's own files

        home = str(rro_home())
        if str(err.filename).startswith(home):
            advice += f" (this is rro's cache, RRO_HOME={home}: point RRO_HOME at a folder you may write)"
        return f"{where}: {advice}"
    if isinstance(err, OSError) and err.errno in _OS_ADVICE:
        return f"{_OS_ADVICE[err.errno]} ({err.strerror or err})"
    if isinstance(err, KeyError):
        return str(err.args[0]) if err.args else "a required entry is missing"
    text = str(err).strip() or type(err).__name__
    return text


def plain_errors(body: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command's body so that expected failures end it as one plain line (see the module)."""

    @functools.wraps(body)
    def command(*args: Any, **kwargs: Any) -> Any:
        from rro import terminal

        try:
            return body(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise  # typer's own way out (Exit is a RuntimeError)
        except EXPECTED as err:
            if terminal.verbose():
                traceback.print_exc()
            fail(describe(err))
        except KeyboardInterrupt:
            console.print("interrupted: finished work is saved; rerun the same command to resume", markup=False)
            raise typer.Exit(code=130) from None

    return command


class PlainErrorsTyper(typer.Typer):
    """A typer app whose every command runs inside `plain_errors`."""

    def command(self, *args: Any, **kwargs: Any):
        register = super().command(*args, **kwargs)
        return lambda body: (register(plain_errors(body)), body)[1]
