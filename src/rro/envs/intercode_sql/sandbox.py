"""What an agent's SQL may do, checked before either backend sees it.

The backends enforce read-only access themselves (a SELECT-only account on MariaDB, read-only
connections with an authorizer on SQLite); this check adds what they cannot express: exactly one
statement per action, no file access, and a clear refusal message instead of a driver error.
"""

from __future__ import annotations

import sqlglot
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType


class Refused(ValueError):
    """The statement is not allowed; the message is shown to the agent."""


# First keywords of the statements an agent may run: reads and schema inspection.
ALLOWED_FIRST = {"SELECT", "WITH", "SHOW", "DESC", "DESCRIBE", "USE", "("}
# Words that reach the file system (or write) from inside an otherwise read-only statement.
FORBIDDEN_WORDS = {"LOAD_FILE", "OUTFILE", "DUMPFILE", "INTO", "LOAD", "ATTACH", "PRAGMA"}


def check_statement(sql: str) -> str:
    """Return the single statement in `sql` (trailing semicolons removed) or raise `Refused`."""
    try:
        tokens = sqlglot.tokenize(sql, read="mysql")
    except TokenError as err:
        raise Refused(f"could not read the statement ({err})") from None
    while tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        tokens.pop()
    if not tokens:
        raise Refused("empty statement")
    if any(t.token_type == TokenType.SEMICOLON for t in tokens):
        raise Refused("one statement per action: remove everything after the first ';'")
    first = tokens[0].text.upper()
    if first not in ALLOWED_FIRST:
        raise Refused(f"{first} is not allowed: the database is read-only (use SELECT, SHOW, DESCRIBE or USE)")
    for token in tokens:
        # Quoted identifiers (`into`) and strings are names and data, not keywords.
        if token.token_type in (TokenType.STRING, TokenType.IDENTIFIER):
            continue
        if token.text.upper() in FORBIDDEN_WORDS:
            raise Refused(f"{token.text.upper()} is not allowed: no writes and no file access")
    return sql[: tokens[-1].end + 1].strip()
