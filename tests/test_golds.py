"""Every gold query runs, and scores 1.0 against itself, through the real environment."""

import pytest

from rro.envs import make
from rro.envs.intercode_sql.dataset import load_tasks

# Not valid MySQL: `SHOW` used as a table name (164, 802), a derived table without alias (178, 225),
# `COUNT (*)` with a space (531, 638). InterCode keeps and scores them: the errored gold counts as empty.
INVALID_MYSQL = {"164", "178", "225", "531", "638", "802"}


def score_gold_against_itself(backend: str) -> dict[str, float]:
    env = make("intercode-sql", backend=backend)
    rewards = {}
    for task in load_tasks("all", include_empty_dbs=True):
        env.reset(task)
        env.step(task.fields["gold"])
        rewards[task.id] = env.step("submit").reward
    env.close()
    return rewards


def test_all_golds_score_one_on_sqlite():
    rewards = score_gold_against_itself("sqlite")
    assert len(rewards) == 1034
    assert [task for task, reward in rewards.items() if reward != 1.0] == []


@pytest.mark.mariadb
def test_golds_on_mariadb(mariadb_server):
    rewards = score_gold_against_itself("mariadb")
    failing = {task for task, reward in rewards.items() if reward != 1.0}
    assert failing == INVALID_MYSQL
    assert all(rewards[task] == 0.0 for task in INVALID_MYSQL)  # the agent's identical query errors too
