"""How far the SQLite backend drifts from MariaDB, and whether MariaDB answers the same twice.

Runs every gold query of InterCode-SQL on both backends (MariaDB must be up: `rro db up`) and prints:
- how many golds run on each backend;
- how many gold results differ between the backends under InterCode's reward
  (reward(sqlite result, mariadb result) < 1), raw and after normalising number types
  (Decimal/float/int compared as rounded floats, dates as text), with the first examples;
- how many golds give a different result on MariaDB when run again on fresh connections.

    python bench/sql_backend_drift.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from datetime import date, datetime
from decimal import Decimal

from rro.envs.intercode_sql.dataset import DUMP_FILE, load_records
from rro.envs.intercode_sql.mariadb_backend import MariaDBBackend
from rro.envs.intercode_sql.reward import intercode_reward
from rro.envs.intercode_sql.sqlite_backend import SqliteBackend
from rro.fetch import require_cached


def run(backend, db: str, sql: str):
    session = backend.session(db)
    try:
        return session.execute(sql)
    finally:
        session.close()


def normalise(rows):
    def value(v):
        if isinstance(v, (int, float, Decimal)) and not isinstance(v, bool):
            return round(float(v), 4)
        if isinstance(v, (date, datetime)):
            return str(v)  # SQLite keeps these as text in the same format
        return v

    return None if rows is None else [tuple(value(v) for v in row) for row in rows]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3, help="fresh MariaDB connections per gold")
    args = parser.parse_args()
    dump = require_cached(DUMP_FILE)
    sqlite, mariadb = SqliteBackend(dump), MariaDBBackend(dump)
    records = load_records()
    errors = {"sqlite": [], "mariadb": []}
    differ_raw, differ_norm, unstable = [], [], []
    started = time.perf_counter()
    for i, record in enumerate(records):
        lite = run(sqlite, record["db"], record["gold"])
        maria = run(mariadb, record["db"], record["gold"])
        for name, result in (("sqlite", lite), ("mariadb", maria)):
            if result.error:
                errors[name].append(i)
        if lite.error or maria.error:
            continue
        if intercode_reward(lite.rows, maria.rows) < 1.0:
            differ_raw.append(i)
        if intercode_reward(normalise(lite.rows), normalise(maria.rows)) < 1.0:
            differ_norm.append(i)
        again = [run(mariadb, record["db"], record["gold"]).rows for _ in range(args.repeats - 1)]
        if any(rows != maria.rows for rows in again):
            unstable.append(i)
    n = len(records)
    both = n - len(set(errors["sqlite"]) | set(errors["mariadb"]))
    print(f"gold queries: {n}; {time.perf_counter() - started:.1f} s")
    print(f"run on sqlite: {n - len(errors['sqlite'])} (errors: {errors['sqlite']})")
    print(f"run on mariadb: {n - len(errors['mariadb'])} (errors: {errors['mariadb']})")
    print(f"results that differ (reward < 1), raw: {len(differ_raw)} of {both} ({100 * len(differ_raw) / both:.1f}%)")
    print(f"results that differ after normalising numbers: {len(differ_norm)} of {both} ({100 * len(differ_norm) / both:.1f}%)")
    print(f"mariadb results that change over {args.repeats} fresh connections: {len(unstable)} {unstable[:20]}")
    for i in differ_norm[:8]:
        record = records[i]
        lite = run(sqlite, record["db"], record["gold"]).rows
        maria = run(mariadb, record["db"], record["gold"]).rows
        print(f"\n#{i} {record['gold'][:110]}\n  sqlite:  {str(lite)[:150]}\n  mariadb: {str(maria)[:150]}")


if __name__ == "__main__":
    main()
