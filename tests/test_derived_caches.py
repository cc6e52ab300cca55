"""Derived caches are verified when opened: a damaged or missing one is rebuilt, and said so, never
used (docs/guarantees.md). Through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RRO = str(Path(sys.executable).with_name("rro"))


def rro(*args: str) -> str:
    """`rro ARGS` in a process of its own (as a user runs it: nothing opened before); its output."""
    result = subprocess.run([RRO, *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return " ".join((result.stdout + result.stderr).split())


def _converted_databases():
    from rro.envs.intercode_sql import sqlite_backend
    from rro.envs.intercode_sql.dataset import DUMP_FILE, load_tasks
    from rro.fetch import require_cached

    folder = sqlite_backend.converted_dir(require_cached(DUMP_FILE))
    return folder, folder / f"{load_tasks('test')[0].fields['db']}.sqlite"


def _expert_eval(out) -> tuple[dict, str]:
    output = rro("eval", "--policy", "expert", "--split", "test", "--limit", "2", "-o", str(out))
    return json.loads((out / "summary.json").read_text()), output


def test_a_damaged_database_is_rebuilt_not_scored_against(tmp_path):
    folder, database = _converted_databases()
    data = bytearray(database.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(b ^ 0xFF for b in data[len(data) // 2: len(data) // 2 + 64])
    database.write_bytes(bytes(data))  # flipped bytes in the first test task's database
    summary, output = _expert_eval(tmp_path / "flipped")
    assert summary["avg_reward"] == 100.0  # the expert's golds ran on a sound database
    assert f"note: rebuilding the converted InterCode-SQL databases in {folder}, not used as found: " \
           f"{database.name} does not match its checksum" in output


def test_a_missing_database_is_rebuilt(tmp_path):
    folder, database = _converted_databases()
    database.unlink()
    summary, output = _expert_eval(tmp_path / "missing")
    assert summary["avg_reward"] == 100.0 and database.exists()
    assert f"{database.name} is missing" in output


def test_a_damaged_checkpoint_is_rebuilt(tmp_path, tiny_policy):
    from rro.policy.models import fetch_model

    checkpoint = fetch_model("tiny-random")
    weights = checkpoint / "model.safetensors"
    sound = weights.read_bytes()
    weights.write_bytes(sound[:-16] + bytes(16))  # the last weights zeroed: it would still load
    output = rro("eval", "--model", "tiny-random", "--dtype", "float32", "--limit", "1", "--max-steps", "1",
                 "--max-new-tokens", "4", "-o", str(tmp_path / "e"))
    assert "rebuilding the converted checkpoint of tiny-random" in output
    assert "model.safetensors does not match its checksum" in output
    assert weights.read_bytes() == sound  # rebuilt as it was made (seeded)


BUILDER_KILLED_MIDWAY = """
import sys, time
from pathlib import Path
from rro.derived_cache import open_or_build

def build(folder):
    (folder / "half.bin").write_bytes(bytes(1 << 20))
    print("building", flush=True)
    time.sleep(600)

open_or_build(Path(sys.argv[1]), build, "a test cache")
"""


def test_what_a_killed_builder_left_is_deleted_by_the_next_build(tmp_path):
    from rro.derived_cache import damage, open_or_build

    target = tmp_path / "cache"
    builder = subprocess.Popen([sys.executable, "-c", BUILDER_KILLED_MIDWAY, str(target)],
                               stdout=subprocess.PIPE, text=True)
    assert builder.stdout.readline() == "building\n"
    builder.kill()  # SIGKILL: no finally block runs
    builder.wait()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == [".building-cache", ".cache.lock"] and not target.exists()

    open_or_build(target, lambda folder: (folder / "whole.bin").write_bytes(b"sound"), "a test cache")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cache.lock", "cache"]
    assert damage(target) is None and (target / "whole.bin").read_bytes() == b"sound"
