import pytest

from rro.envs.intercode_sql.dataset import (
    EMPTY_DATABASES,
    SPLIT_SCHEMES,
    load_records,
    load_tasks,
    normalize_sql,
)


def golds(tasks):
    return {normalize_sql(t.fields["gold"]) for t in tasks}


def test_records_are_spider_dev():
    records = load_records()
    assert len(records) == 1034
    assert {"db", "gold", "query", "hardness", "db_tables"} <= set(records[0])


def test_interCode_order_leaks_paraphrases():
    # The measured fact behind the default split: 74 of the first 100 golds recur in records 200+.
    records = load_records()
    later = {normalize_sql(r["gold"]) for r in records[200:]}
    assert sum(normalize_sql(r["gold"]) in later for r in records[:100]) == 74


def test_by_query_split_is_leak_free_and_about_200():
    test, train = load_tasks("test", "by-query"), load_tasks("train", "by-query")
    assert 190 <= len(test) <= 215
    assert not golds(test) & golds(train)
    assert len(test) + len(train) == 1034 - sum(r["db"] in EMPTY_DATABASES for r in load_records())


def test_by_db_split_has_unseen_databases():
    test, train = load_tasks("test", "by-db"), load_tasks("train", "by-db")
    assert not {t.fields["db"] for t in test} & {t.fields["db"] for t in train}
    assert 150 <= len(test) <= 300


def test_records_split_is_interCode_order():
    test = load_tasks("test", "records", include_empty_dbs=True)
    assert [t.fields["index"] for t in test] == list(range(200))


@pytest.mark.parametrize("scheme", SPLIT_SCHEMES)
def test_splits_are_deterministic_and_partition_the_tasks(scheme):
    first = [t.id for t in load_tasks("test", scheme)]
    assert first == [t.id for t in load_tasks("test", scheme)]
    train = {t.id for t in load_tasks("train", scheme)}
    assert not set(first) & train
    assert set(first) | train == {t.id for t in load_tasks("all")}


def test_empty_database_excluded_unless_asked():
    assert all(t.fields["db"] != "wta_1" for t in load_tasks("all"))
    assert sum(t.fields["db"] == "wta_1" for t in load_tasks("all", include_empty_dbs=True)) == 62
    # Including it does not move any other task between train and test.
    with_empty = {t.id for t in load_tasks("test", include_empty_dbs=True) if t.fields["db"] != "wta_1"}
    assert with_empty == {t.id for t in load_tasks("test")}


def test_filters():
    tasks = load_tasks("all", dbs=["car_1"], hardness=["easy"])
    assert tasks and all(t.fields["db"] == "car_1" and t.fields["hardness"] == "easy" for t in tasks)
    with pytest.raises(ValueError, match="no_such_db"):
        load_tasks("all", dbs=["no_such_db"])
    with pytest.raises(ValueError, match="impossible"):
        load_tasks("all", hardness=["impossible"])
