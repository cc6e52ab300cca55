"""The embedded backend: InterCode's MySQL dump converted to SQLite, agent MySQL transpiled.

The dump is converted once with sqlglot into one SQLite file per Spider database (cached under
`RRO_HOME`, keyed by the dump's checksum). Agents keep writing MySQL: statements are transpiled to
SQLite, and MySQL's schema statements (`SHOW TABLES`, `DESC t`, `SHOW COLUMNS FROM t`,
`SHOW DATABASES`, `USE db`) are emulated from the dump's own column definitions. String columns
compare as MySQL's `utf8mb4_general_ci` does (case- and trailing-space-insensitive), through a
collation registered on every connection.

Connections are read-only (`mode=ro`) with an authorizer that allows reads only, and a progress
handler that interrupts a statement at its time limit.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from rro.derived_cache import open_or_build
from rro.fetch import rro_home, sha256_of

CONVERTER_VERSION = 2  # bump when the conversion changes, so cached files are rebuilt
COLLATION = "MYSQL_CI"
# Error texts as MariaDB words them, so observations read the same on both backends.
TIMEOUT_MESSAGE = "Query execution was interrupted (max_statement_time exceeded)"


@dataclass
class ExecResult:
    """What one statement produced: a result set (`rows`), no result set (`rows is None`), or an error."""

    rows: list[tuple] | None = None
    error: str | None = None
    truncated: bool = False


# ---------------------------------------------------------------------------------------------
# MySQL semantics that SQLite lacks

def _mysql_ci_key(text: str) -> str:
    # utf8mb4_general_ci: letters compare without case and accents; PAD SPACE ignores trailing spaces.
    decomposed = unicodedata.normalize("NFKD", text.rstrip(" "))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def _compare_numerically(node: exp.Expr) -> exp.Expr:
    """MySQL compares a string with a number as numbers; SQLite compares a text column with a
    number as text ('95' > '150'). Casting the column side of column-vs-number comparisons gives
    MySQL's answer for text columns and changes nothing for numeric ones."""
    if isinstance(node, _COMPARISONS):
        left, right = node.this, node.expression
        if isinstance(left, exp.Column) and isinstance(right, exp.Literal) and not right.is_string:
            node.set("this", exp.cast(left, "REAL"))
        elif isinstance(right, exp.Column) and isinstance(left, exp.Literal) and not left.is_string:
            node.set("expression", exp.cast(right, "REAL"))
    return node


def to_sqlite(statement: str) -> str:
    """Transpile one MySQL statement to SQLite, keeping MySQL's comparison semantics."""
    return sqlglot.parse_one(statement, read="mysql").transform(_compare_numerically).sql("sqlite")


def _mysql_ci(a: str, b: str) -> int:
    ka, kb = _mysql_ci_key(a), _mysql_ci_key(b)
    return (ka > kb) - (ka < kb)


# ---------------------------------------------------------------------------------------------
# Conversion of the dump

def _sections(dump: str) -> dict[str, str]:
    """The dump's text per database, keyed by the database name lowercased (as MariaDB stores it
    under lower_case_table_names=1)."""
    parts = re.split(r"^USE `([^`]+)`;$", dump, flags=re.M)
    return {parts[i].lower(): parts[i + 1] for i in range(1, len(parts), 2)}


def _mariadb_type(kind: exp.DataType) -> str:
    text = kind.sql("mysql").lower().replace(", ", ",")
    return "int(11)" if text == "int" else text  # MariaDB shows int's display width


def _describe_rows(create: exp.Create) -> list[tuple]:
    """`DESCRIBE table` rows (Field, Type, Null, Key, Default, Extra) as MariaDB shows them."""
    schema = create.this
    primary: list[str] = []
    unique: set[str] = set()
    indexed: set[str] = set()
    for item in schema.expressions:
        if isinstance(item, exp.PrimaryKey):
            primary = [(e.this if isinstance(e, exp.ColumnPrefix) else e).name for e in item.expressions]
        elif isinstance(item, exp.UniqueColumnConstraint):
            cols = item.this.expressions if isinstance(item.this, exp.Schema) else []
            if cols:
                unique.add(cols[0].name)
        elif isinstance(item, exp.IndexColumnConstraint) and item.expressions:
            indexed.add(item.expressions[0].name)
    rows = []
    for column in schema.find_all(exp.ColumnDef):
        kinds = {type(c.kind): c.kind for c in column.constraints}
        not_null = exp.NotNullColumnConstraint in kinds and not kinds[exp.NotNullColumnConstraint].args.get("allow_null")
        default = kinds.get(exp.DefaultColumnConstraint)
        default_text = None
        if default is not None and not isinstance(default.this, exp.Null):
            default_text = default.this.name if isinstance(default.this, exp.Literal) else default.this.sql("mysql")
        if column.name in primary:
            key = "PRI"
        elif column.name in unique:
            key = "UNI"
        elif column.name in indexed:
            key = "MUL"
        else:
            key = ""
        rows.append((
            column.name,
            _mariadb_type(column.args["kind"]),
            "NO" if not_null or column.name in primary else "YES",
            key,
            default_text,
            "auto_increment" if exp.AutoIncrementColumnConstraint in kinds else "",
        ))
    return rows


def _to_sqlite_create(create: exp.Create) -> str:
    create = create.copy()
    schema = create.this
    schema.this.set("this", exp.to_identifier(schema.this.name.lower(), quoted=True))
    kept = []
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            constraints = [
                c for c in item.constraints
                if not isinstance(c.kind, (exp.CollateColumnConstraint, exp.CharacterSetColumnConstraint,
                                           exp.AutoIncrementColumnConstraint))
            ]
            if item.args["kind"].is_type(*exp.DataType.TEXT_TYPES):
                constraints.append(exp.ColumnConstraint(kind=exp.CollateColumnConstraint(this=exp.var(COLLATION))))
            item.set("constraints", constraints)
            kept.append(item)
        elif isinstance(item, exp.PrimaryKey):
            # MySQL prefix-length keys (`col`(255)) have no SQLite equivalent: key the whole column.
            item.set("expressions", [e.this if isinstance(e, exp.ColumnPrefix) else e for e in item.expressions])
            kept.append(item)
        elif isinstance(item, exp.UniqueColumnConstraint):
            cols = item.this.expressions if isinstance(item.this, exp.Schema) else []
            kept.append(exp.UniqueColumnConstraint(this=exp.Schema(expressions=cols)))
        elif isinstance(item, exp.Constraint):
            kept.extend(item.expressions)  # the constraint without its (possibly sqlite_-prefixed) name
        # Inline index definitions (KEY name (cols)) are dropped: SQLite creates indexes separately.
    schema.set("expressions", kept)
    create.set("properties", None)
    return create.sql("sqlite")


def _lowercase_table(statement: exp.Expr) -> exp.Expr:
    for table in statement.find_all(exp.Table):
        table.set("this", exp.to_identifier(table.name.lower(), quoted=True))
    return statement


def convert_dump(dump_path: Path, out_dir: Path) -> None:
    """Write one `<db>.sqlite` per database and `schema.json` (DESCRIBE rows) into `out_dir`."""
    dump = dump_path.read_text(encoding="utf-8")
    describe: dict[str, dict[str, list]] = {}
    for db, text in _sections(dump).items():
        db_file = out_dir / f"{db}.sqlite"
        connection = sqlite3.connect(db_file)
        connection.create_collation(COLLATION, _mysql_ci)
        describe[db] = {}
        for statement in re.findall(r"^CREATE TABLE .*?;$", text, flags=re.S | re.M):
            create = sqlglot.parse_one(statement, read="mysql")
            describe[db][create.this.this.name.lower()] = _describe_rows(create)
            connection.execute(_to_sqlite_create(create))
        for statement in re.findall(r"^INSERT INTO .*?;$", text, flags=re.M):
            connection.execute(_lowercase_table(sqlglot.parse_one(statement, read="mysql")).sql("sqlite"))
        connection.commit()
        connection.close()
    (out_dir / "schema.json").write_text(json.dumps(describe, indent=1))


def converted_dir(dump_path: Path) -> Path:
    """The folder of converted databases for this dump, verified against the checksums recorded
    when it was converted; converted on first use, and again when damaged (rro.derived_cache:
    once per machine, atomically, also when workers start together)."""
    key = f"{sha256_of(dump_path)[:16]}-v{CONVERTER_VERSION}"
    target = rro_home() / "intercode-sql" / "sqlite" / key
    return open_or_build(target, lambda folder: convert_dump(dump_path, folder), "the converted InterCode-SQL databases")


# ---------------------------------------------------------------------------------------------
# Sessions

_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}


def _authorize(action: int, *_args) -> int:
    return sqlite3.SQLITE_OK if action in _READ_ACTIONS else sqlite3.SQLITE_DENY


_NAME = r"`?([A-Za-z0-9_$]+)`?"
_SHOW_TABLES = re.compile(r"SHOW\s+(?:FULL\s+)?TABLES", re.I)
_SHOW_DATABASES = re.compile(r"SHOW\s+(?:DATABASES|SCHEMAS)", re.I)
_DESCRIBE = re.compile(rf"(?:DESC|DESCRIBE)\s+(?:{_NAME}\.)?{_NAME}", re.I)
_SHOW_COLUMNS = re.compile(rf"SHOW\s+(?:FULL\s+)?(?:COLUMNS|FIELDS)\s+(?:FROM|IN)\s+{_NAME}(?:\s+(?:FROM|IN)\s+{_NAME})?", re.I)
_USE = re.compile(rf"USE\s+{_NAME}", re.I)


class SqliteSession:
    """One agent's connection: a current database, read-only, with a time limit per statement."""

    def __init__(self, directory: Path, schema: dict, db: str, time_limit_s: float, max_rows: int):
        self.directory = directory
        self.schema = schema
        self.time_limit_s = time_limit_s
        self.max_rows = max_rows
        self.connection: sqlite3.Connection | None = None
        self.db = ""
        self._deadline = 0.0
        self._use(db)

    def _use(self, db: str) -> ExecResult:
        name = db.lower()
        if name not in self.schema:
            return ExecResult(error=f"Unknown database '{db}'")
        if self.connection is not None:
            self.connection.close()
        uri = f"file:{self.directory / (name + '.sqlite')}?mode=ro&immutable=1"
        self.connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self.connection.create_collation(COLLATION, _mysql_ci)
        self.connection.set_authorizer(_authorize)
        self.connection.set_progress_handler(self._past_deadline, 1000)
        self.db = name
        return ExecResult(rows=None)

    def _past_deadline(self) -> int:
        return int(time.monotonic() > self._deadline)

    def _describe(self, table: str, db: str | None) -> ExecResult:
        db_name = (db or self.db).lower()
        columns = self.schema.get(db_name, {}).get(table.lower())
        if columns is None:
            return ExecResult(error=f"Table '{db_name}.{table.lower()}' doesn't exist")
        return ExecResult(rows=[tuple(c) for c in columns])

    def execute(self, statement: str) -> ExecResult:
        """Run one statement (already checked by the sandbox) and return its result or error."""
        if _SHOW_TABLES.fullmatch(statement):
            return ExecResult(rows=[(t,) for t in sorted(self.schema[self.db])])
        if _SHOW_DATABASES.fullmatch(statement):
            return ExecResult(rows=[(d,) for d in ["information_schema", *sorted(self.schema)]])
        if m := _DESCRIBE.fullmatch(statement):
            return self._describe(m.group(2), m.group(1))
        if m := _SHOW_COLUMNS.fullmatch(statement):
            return self._describe(m.group(1), m.group(2))
        if m := _USE.fullmatch(statement):
            return self._use(m.group(1))
        if re.match(r"(SHOW|DESC|DESCRIBE|USE)\b", statement, re.I):
            return ExecResult(error=f"This statement is not supported by the SQLite backend: {statement[:60]}")
        try:
            translated = to_sqlite(statement)
        except (ParseError, TokenError) as err:
            return ExecResult(error=f"You have an error in your SQL syntax: {str(err).splitlines()[0]}")
        return self._run(translated)

    def _run(self, sql: str) -> ExecResult:
        assert self.connection is not None
        self._deadline = time.monotonic() + self.time_limit_s
        try:
            cursor = self.connection.execute(sql)
            if cursor.description is None:
                return ExecResult(rows=None)
            rows = cursor.fetchmany(self.max_rows + 1)
        except sqlite3.OperationalError as err:
            if str(err) == "interrupted":
                return ExecResult(error=TIMEOUT_MESSAGE)
            return ExecResult(error=str(err))
        except sqlite3.DatabaseError as err:
            return ExecResult(error=str(err))
        if len(rows) > self.max_rows:
            return ExecResult(rows=rows[: self.max_rows], truncated=True)
        return ExecResult(rows=rows)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class SqliteBackend:
    name = "sqlite"

    def __init__(self, dump_path: Path, time_limit_s: float = 5.0, max_rows: int = 10_000):
        self.directory = converted_dir(dump_path)
        self.schema = json.loads((self.directory / "schema.json").read_text())
        self.time_limit_s = time_limit_s
        self.max_rows = max_rows

    def session(self, db: str) -> SqliteSession:
        return SqliteSession(self.directory, self.schema, db, self.time_limit_s, self.max_rows)
