"""The faithful backend: a private MariaDB server loaded from InterCode's MySQL dump.

`rro db up` initialises a data directory under `RRO_HOME/mariadb` with `lower_case_table_names=1`
(the gold queries mix `Airports`/`airports` and `T2`/`t2`: with the default only 865 of 1034 run),
starts `mariadbd` on a private Unix socket with networking off (no system service, no port),
loads the dump once and creates a SELECT-only account for agents. Agent sessions connect through
that account with a statement time limit, using InterCode's own driver (mysql-connector-python),
so results are the Python objects InterCode's agents saw.

Workers on other machines share one server instead: `rro db up --port 3306 --bind-address 0.0.0.0`
turns networking on and opens the same SELECT-only account to other hosts, and the environment's
`mariadb_host`/`mariadb_port` (or `mariadb_socket`) options point sessions at it. A shared server's
account is checked on connection: one that may write is refused.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import mysql.connector
from mysql.connector import errors as mysql_errors

from rro.envs.intercode_sql.sqlite_backend import ExecResult
from rro.fetch import rro_home, sha256_of

_USE = re.compile(r"USE\s+`?([A-Za-z0-9_$]+)`?", re.I)
AGENT_USER = "rro_agent"
# A well-known password is enough for an account that can only read Spider's public tables; a shared
# server that wants another sets it, and its workers read it from RRO_MARIADB_PASSWORD.
AGENT_PASSWORD = "rro_agent"
SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
# What the agents' account may hold: reading, nothing else.
READ_ONLY_PRIVILEGES = {"SELECT", "SHOW VIEW", "USAGE"}
INSTALL_HINT = "MariaDB is not installed: `apt-get install -y mariadb-server` (Debian/Ubuntu)."


class MariaDBError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServerPaths:
    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket(self) -> Path:
        return self.root / "mysqld.sock"

    @property
    def pid_file(self) -> Path:
        return self.root / "mysqld.pid"

    @property
    def log(self) -> Path:
        return self.root / "error.log"

    @property
    def no_file_access(self) -> Path:
        return self.root / "no-file-access"

    @property
    def loaded_marker(self) -> Path:
        return self.root / "loaded-dump.sha256"


def server_paths() -> ServerPaths:
    return ServerPaths(rro_home() / "mariadb")


def _binary(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise MariaDBError(f"`{name}` not found. {INSTALL_HINT}")


def is_installed() -> bool:
    try:
        _binary("mariadbd")
        _binary("mariadb-install-db")
        return True
    except MariaDBError:
        return False


def _root_connection(paths: ServerPaths):
    return mysql.connector.connect(unix_socket=str(paths.socket), user="root", password="")


def is_running(paths: ServerPaths | None = None) -> bool:
    paths = paths or server_paths()
    if not paths.socket.exists():
        return False
    try:
        _root_connection(paths).close()
        return True
    except mysql_errors.Error:
        return False


def _user_flag() -> list[str]:
    # mariadbd refuses to run as root unless told to.
    return ["--user=root"] if os.geteuid() == 0 else []


def _networking(port: int | None, bind_address: str) -> list[str]:
    return ["--skip-networking"] if port is None else [f"--port={port}", f"--bind-address={bind_address}"]


def _server_options(paths: ServerPaths, port: int | None, bind_address: str) -> list[str]:
    return [
        "--no-defaults",
        f"--datadir={paths.data}",
        f"--socket={paths.socket}",
        f"--pid-file={paths.pid_file}",
        f"--log-error={paths.log}",
        *_networking(port, bind_address),
        "--lower-case-table-names=1",
        # An empty, read-only folder: the only place LOAD DATA / INTO OUTFILE could touch.
        f"--secure-file-priv={paths.no_file_access}",
        "--innodb-buffer-pool-size=64M",
        # In-memory temporary tables break ties (GROUP BY ... ORDER BY count(*) LIMIT 1) differently
        # on each connection, so the same query could answer differently between episodes. On-disk
        # temporary tables answer the same every time; Spider's tables are small enough not to care.
        "--tmp-memory-table-size=0",
        "--max-connections=2000",  # one per running episode: rollouts run hundreds at once
        *_user_flag(),
    ]


def _initialise(paths: ServerPaths) -> None:
    paths.data.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            _binary("mariadb-install-db"),
            "--no-defaults",
            f"--datadir={paths.data}",
            "--lower-case-table-names=1",
            "--auth-root-authentication-method=normal",  # root without password, socket only
            "--skip-test-db",
            *_user_flag(),
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        shutil.rmtree(paths.data, ignore_errors=True)
        raise MariaDBError(f"mariadb-install-db failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


def _start(paths: ServerPaths, port: int | None, bind_address: str, timeout_s: float = 60.0) -> None:
    paths.socket.unlink(missing_ok=True)
    subprocess.Popen(
        [_binary("mariadbd"), *_server_options(paths, port, bind_address)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives the command that started it, like a service
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if is_running(paths):
            return
        time.sleep(0.2)
    log = paths.log.read_text()[-2000:] if paths.log.exists() else "(no log)"
    raise MariaDBError(f"MariaDB did not start within {timeout_s:.0f} s. Last lines of {paths.log}:\n{log}")


def _load_dump(paths: ServerPaths, dump_path: Path) -> None:
    dump = dump_path.read_text(encoding="utf-8")
    # The dump opens by creating an all-powerful 'admin' account: skip that, create our own.
    statements = "\n".join(
        line for line in dump.splitlines() if not re.match(r"(CREATE USER|GRANT|FLUSH PRIVILEGES)", line)
    )
    result = subprocess.run(
        [_binary("mariadb"), "--no-defaults", f"--socket={paths.socket}", "--user=root"],
        input=statements,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise MariaDBError(f"loading the dump failed: {result.stderr[-2000:]}")
    paths.loaded_marker.write_text(sha256_of(dump_path))


def _grant_agent(paths: ServerPaths, hosts: tuple[str, ...]) -> None:
    """The agents' account on each host pattern: read and inspect the Spider databases only (no other
    schema, no FILE privilege, no writes). Idempotent."""
    connection = _root_connection(paths)
    cursor = connection.cursor()
    cursor.execute("SELECT schema_name FROM information_schema.schemata")
    databases = [db for (db,) in cursor.fetchall() if db.lower() not in SYSTEM_SCHEMAS]
    for host in hosts:
        cursor.execute(f"CREATE USER IF NOT EXISTS '{AGENT_USER}'@'{host}' IDENTIFIED BY '{AGENT_PASSWORD}'")
        for db in databases:
            cursor.execute(f"GRANT SELECT, SHOW VIEW ON `{db}`.* TO '{AGENT_USER}'@'{host}'")
    cursor.execute("FLUSH PRIVILEGES")
    connection.close()


def _listening(paths: ServerPaths) -> tuple[int | None, str]:
    """The running server's (port, bind address); port None when networking is off."""
    connection = _root_connection(paths)
    cursor = connection.cursor()
    cursor.execute("SELECT @@skip_networking, @@port, @@bind_address")
    skip_networking, port, bind_address = cursor.fetchone()
    connection.close()
    return (None, "") if skip_networking else (int(port), bind_address or "")


def up(dump_path: Path, port: int | None = None, bind_address: str = "127.0.0.1") -> ServerPaths:
    """Start the server (initialising and loading the dump on first use). Idempotent.

    `port` None keeps it private (Unix socket only). A port opens it to other machines' workers on
    `bind_address` (127.0.0.1: this machine only; 0.0.0.0: every interface), with the agents' read-only
    account allowed from any host. A running server listening otherwise is restarted."""
    paths = server_paths()
    if not is_installed():
        raise MariaDBError(INSTALL_HINT)
    paths.root.mkdir(parents=True, exist_ok=True)
    os.chmod(paths.root, 0o700)  # the socket's root account has no password: keep others out
    if not (paths.data / "mysql").exists():
        _initialise(paths)
    paths.no_file_access.mkdir(exist_ok=True)
    os.chmod(paths.no_file_access, 0o500)
    if is_running(paths) and _listening(paths) != ((None, "") if port is None else (port, bind_address)):
        down()
    if not is_running(paths):
        _start(paths, port, bind_address)
    expected = sha256_of(dump_path)
    if not paths.loaded_marker.exists() or paths.loaded_marker.read_text() != expected:
        _load_dump(paths, dump_path)
    _grant_agent(paths, ("localhost",) if port is None else ("localhost", "%"))
    return paths


def down() -> bool:
    """Stop the server; return whether one was running."""
    paths = server_paths()
    if not is_running(paths):
        return False
    pid = int(paths.pid_file.read_text()) if paths.pid_file.exists() else None
    if pid:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and is_running(paths):
            time.sleep(0.2)
    return True


def status() -> dict:
    paths = server_paths()
    running = is_running(paths)
    info = {
        "installed": is_installed(),
        "running": running,
        "socket": str(paths.socket),
        "port": _listening(paths)[0] if running else None,
        "data_dir": str(paths.data),
        "dump_loaded": paths.loaded_marker.exists(),
    }
    if running:
        connection = _root_connection(paths)
        cursor = connection.cursor()
        cursor.execute("SELECT VERSION(), @@lower_case_table_names")
        info["version"], info["lower_case_table_names"] = cursor.fetchone()
        connection.close()
    return info


class MariaDBSession:
    """One agent's connection through the read-only account, with a time limit per statement."""

    def __init__(self, connect: dict, db: str, time_limit_s: float, max_rows: int):
        self.connect = connect
        self.db = db
        self.time_limit_s = time_limit_s
        self.max_rows = max_rows
        self._connect()

    def _connect(self) -> None:
        self.connection = mysql.connector.connect(**self.connect, database=self.db)
        self.cursor = self.connection.cursor(buffered=False)
        self.cursor.execute(f"SET SESSION max_statement_time = {float(self.time_limit_s)}")

    def _reconnect(self) -> None:
        """A fresh connection in the same database: the cheapest way to abandon a huge result."""
        self.close()
        self._connect()

    def execute(self, statement: str) -> ExecResult:
        try:
            self.cursor.execute(statement)
            if self.cursor.description is None:
                if m := _USE.fullmatch(statement):
                    self.db = m.group(1)
                return ExecResult(rows=None)
            rows = self.cursor.fetchmany(self.max_rows + 1)
            if len(rows) > self.max_rows:
                self._reconnect()
                return ExecResult(rows=rows[: self.max_rows], truncated=True)
            self.cursor.fetchall()  # reads the end-of-result packet so the connection is ready again
            return ExecResult(rows=rows)
        except mysql_errors.Error as err:
            message = err.msg or str(err)
            self._reconnect()
            return ExecResult(error=message)

    def close(self) -> None:
        try:
            self.connection.close()
        except mysql_errors.Error:
            pass


def _privileges(grant: str) -> set[str]:
    """The privileges of one `SHOW GRANTS` line, e.g. {"SELECT", "SHOW VIEW"}."""
    listed = re.match(r"GRANT (.+?) ON ", grant)
    return {p.strip().upper() for p in listed.group(1).split(",")} if listed else set()


def check_read_only(connection) -> None:
    """Refuse an account that could change anything: the sandbox refuses writing statements, and
    the account is the second wall."""
    cursor = connection.cursor()
    cursor.execute("SHOW GRANTS")
    extra = set().union(*(_privileges(grant) for (grant,) in cursor.fetchall())) - READ_ONLY_PRIVILEGES
    cursor.close()
    if extra:
        raise MariaDBError(f"the MariaDB account {connection.user!r} may {', '.join(sorted(extra))}: agents need an "
                           f"account that can only read (GRANT SELECT, SHOW VIEW; `rro db up --port` creates one).")


class MariaDBBackend:
    name = "mariadb"

    def __init__(self, dump_path: Path, time_limit_s: float = 5.0, max_rows: int = 10_000,
                 host: str | None = None, port: int = 3306, socket: Path | None = None):
        self.time_limit_s = time_limit_s
        self.max_rows = max_rows
        if host is None and socket is None:  # the private server of `rro db up`
            paths = server_paths()
            if not is_running(paths):
                raise MariaDBError("the MariaDB server is not running: start it with `rro db up`.")
            self.connect = dict(unix_socket=str(paths.socket), user=AGENT_USER, password=AGENT_PASSWORD)
            return
        where = dict(unix_socket=str(socket)) if socket is not None else dict(host=host, port=port)
        self.connect = dict(**where, user=os.environ.get("RRO_MARIADB_USER", AGENT_USER),
                            password=os.environ.get("RRO_MARIADB_PASSWORD", AGENT_PASSWORD), connection_timeout=10)
        address = socket if socket is not None else f"{host}:{port}"
        try:
            connection = mysql.connector.connect(**self.connect)
        except mysql_errors.Error as err:
            raise MariaDBError(f"cannot reach the shared MariaDB server at {address} as {self.connect['user']!r}: "
                               f"{err.msg or err}") from None
        try:
            check_read_only(connection)
            cursor = connection.cursor()
            cursor.execute("SELECT @@lower_case_table_names")
            (lower_case,) = cursor.fetchone()
            if int(lower_case) != 1:  # the gold queries mix `Airports` and `airports`
                raise MariaDBError(f"the MariaDB server at {address} runs with lower_case_table_names={lower_case}; "
                                   "InterCode-SQL's gold queries need 1 (start it with `rro db up --port`).")
        finally:
            connection.close()

    def session(self, db: str) -> MariaDBSession:
        return MariaDBSession(self.connect, db, self.time_limit_s, self.max_rows)
