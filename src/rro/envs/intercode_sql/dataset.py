"""InterCode-SQL tasks (Spider dev as InterCode packages it) and leak-free splits.

Spider dev holds paraphrase groups: several questions share one gold query. InterCode's record order
scatters them, so "first 200 records = test" puts 74 of the first 100 test golds in training as
well. The default split, `by-query`, keeps every group of equal (normalised) gold SQL on one side.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Literal

from rro.envs.base import Task
from rro.fetch import PypiMember, RemoteFile, require_cached

ENV_NAME = "intercode-sql"
_UPSTREAM = "https://raw.githubusercontent.com/princeton-nlp/intercode/master/data/sql/spider/"

TASKS_FILE = RemoteFile(
    name="ic_spider_dev.json",
    sha256="68c9ecb0692c80770f46c724cc073ea76be4f301a294caa532c050546948128e",
    mirror_subdir="intercode-sql",
    urls=(_UPSTREAM + "ic_spider_dev.json",),
)
DUMP_FILE = RemoteFile(
    name="ic_spider_dbs.sql",
    sha256="61f6e8000cb5bb696f123fa55e111acdcd8da7eca64f452a36fd1a6e5fb1781a",
    mirror_subdir="intercode-sql",
    urls=(_UPSTREAM + "ic_spider_dbs.sql",),
    pypi=(PypiMember("intercode-bench==0.1.22", "intercode/assets/datasets/spider_dev.sql"),),
)

Split = Literal["train", "test", "all"]
SplitScheme = Literal["by-query", "by-db", "records"]
SPLIT_SCHEMES: tuple[str, ...] = ("by-query", "by-db", "records")
HARDNESS_LEVELS = ("easy", "medium", "hard", "extra")

# The dump holds no rows for wta_1, so every one of its gold results is empty and any empty
# result "solves" the task.
EMPTY_DATABASES = frozenset({"wta_1"})
TEST_SIZE = 200
SPLIT_SEED = 0


def normalize_sql(sql: str) -> str:
    """A key under which paraphrase-group golds compare equal: case, quotes, spacing, semicolon."""
    sql = " ".join(sql.lower().replace('"', "'").rstrip().rstrip(";").split())
    return re.sub(r"\s*([(),=<>!*+/-])\s*", r"\1", sql)


@lru_cache(maxsize=4)
def _records(path: Path) -> tuple[dict, ...]:
    return tuple(json.loads(path.read_text()))


def load_records() -> tuple[dict, ...]:
    return _records(require_cached(TASKS_FILE))


def _to_task(index: int, record: dict) -> Task:
    return Task(
        env=ENV_NAME,
        id=str(index),
        instruction=record["query"],
        fields={
            "index": index,
            "db": record["db"],
            "gold": record["gold"],
            "hardness": record["hardness"],
            "db_tables": record["db_tables"],
        },
    )


def _fill_test(groups: Iterable[list[int]], records: tuple[dict, ...]) -> set[int]:
    """Add whole groups (in the given order) to test until it holds TEST_SIZE tasks outside the
    empty databases, so the split of the other tasks does not depend on whether those are kept."""
    test: set[int] = set()
    counted = 0
    for group in groups:
        if counted >= TEST_SIZE:
            break
        test.update(group)
        counted += sum(records[i]["db"] not in EMPTY_DATABASES for i in group)
    return test


def test_indices(scheme: SplitScheme, records: tuple[dict, ...]) -> set[int]:
    """Record indices of the test side of `scheme` (deterministic)."""
    if scheme == "records":
        return set(range(TEST_SIZE))
    if scheme == "by-query":
        key = lambda r: normalize_sql(r["gold"])  # noqa: E731
    elif scheme == "by-db":
        key = lambda r: r["db"]  # noqa: E731
    else:
        raise ValueError(f"unknown split scheme {scheme!r}; choose one of {', '.join(SPLIT_SCHEMES)}")
    groups: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        groups.setdefault(key(record), []).append(i)
    ordered = sorted(groups)  # fixed order first, so the shuffle depends on the seed only
    random.Random(SPLIT_SEED).shuffle(ordered)
    return _fill_test((groups[k] for k in ordered), records)


def load_tasks(
    split: Split = "test",
    scheme: SplitScheme = "by-query",
    dbs: Iterable[str] | None = None,
    hardness: Iterable[str] | None = None,
    include_empty_dbs: bool = False,
) -> list[Task]:
    """Tasks of one side of a split, in record order, optionally filtered by database and hardness."""
    if split not in ("train", "test", "all"):
        raise ValueError(f"unknown split {split!r}; choose train, test or all")
    records = load_records()
    test = test_indices(scheme, records)
    db_filter = set(dbs) if dbs else None
    hardness_filter = set(hardness) if hardness else None
    if hardness_filter and not hardness_filter <= set(HARDNESS_LEVELS):
        raise ValueError(f"unknown hardness {sorted(hardness_filter - set(HARDNESS_LEVELS))}; use {HARDNESS_LEVELS}")
    if db_filter:
        known = {r["db"] for r in records}
        if unknown := db_filter - known:
            raise ValueError(f"unknown database(s) {sorted(unknown)}; known: {', '.join(sorted(known))}")
    tasks = []
    for i, record in enumerate(records):
        if split != "all" and (i in test) != (split == "test"):
            continue
        if record["db"] in EMPTY_DATABASES and not include_empty_dbs:
            continue
        if db_filter and record["db"] not in db_filter:
            continue
        if hardness_filter and record["hardness"] not in hardness_filter:
            continue
        tasks.append(_to_task(i, record))
    return tasks


def task_by_id(task_id: str | int) -> Task:
    records = load_records()
    index = int(task_id)
    if not 0 <= index < len(records):
        raise ValueError(f"task {task_id} does not exist: InterCode-SQL tasks are numbered 0..{len(records) - 1}")
    return _to_task(index, records[index])
