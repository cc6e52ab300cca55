"""The converted SQLite databases are built once per machine, also when workers start together."""

import threading
import time

from rro.envs.intercode_sql import sqlite_backend


def test_concurrent_first_use_converts_once(tmp_path, monkeypatch):
    monkeypatch.setenv("RRO_HOME", str(tmp_path / "home"))
    dump = tmp_path / "dump.sql"
    dump.write_text("-- a dump that no other test converts\n")
    conversions = []

    def slow_convert(dump_path, out_dir):
        conversions.append(out_dir)
        time.sleep(0.5)  # long enough for every other thread to arrive while it runs
        (out_dir / "schema.json").write_text("{}")

    monkeypatch.setattr(sqlite_backend, "convert_dump", slow_convert)
    results, errors = [], []

    def first_use():
        try:
            results.append(sqlite_backend.converted_dir(dump))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=first_use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(conversions) == 1
    assert len(set(results)) == 1 and (results[0] / "schema.json").read_text() == "{}"
    assert [p.name for p in results[0].parent.iterdir() if p.name.startswith(".building-")] == []
