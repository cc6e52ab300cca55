"""The environment on both backends: observations, schema statements, MySQL semantics, replay."""

import pytest

from rro.agent.trajectory import Episode
from rro.envs import make
from rro.envs.intercode_sql.dataset import task_by_id
from rro.rollout import apply_turn, start_episode

# Task 0 asks about poker players (database poker_player).
TASK = 0


@pytest.fixture
def env(backend):
    environment = make("intercode-sql", backend=backend)
    yield environment
    environment.close()


def test_reset_shows_database_and_question(env):
    observation = env.reset(task_by_id(TASK))
    assert observation.startswith("Database: poker_player\nQuestion: ")


def test_results_are_lists_of_row_tuples(env):
    env.reset(task_by_id(TASK))
    observation, reward, done, info = env.step("SELECT count(*) FROM people")
    assert observation == "[(7,)]" and reward == 0.0 and not done and info["rows"] == 1


def test_errors_and_length_limit(env):
    env.reset(task_by_id(TASK))
    observation, *_ = env.step("SELECT nonexistent FROM people")
    assert observation.startswith("Error executing query: ")
    observation, *_ = env.step("SELECT * FROM people")
    assert observation.startswith("[(1, ") and len(observation) == 350


def test_schema_statements_match_mariadb_output(env):
    env.reset(task_by_id(TASK))
    assert env.step("SHOW TABLES")[0] == "[('people',), ('poker_player',)]"
    described = env.step("DESCRIBE people")[0]
    assert described.startswith("[('People_ID', 'int(11)', 'NO', 'PRI', None, 'auto_increment'), ('Nationality', 'text', 'YES', '', None, '')")
    assert env.step("SHOW COLUMNS FROM people")[0] == described
    assert env.step("DESC `People`")[0] == described


def test_use_switches_database(env):
    env.reset(task_by_id(TASK))
    observation, *_ = env.step("USE world_1")
    assert not observation.startswith("Error")
    assert env.step("SELECT count(*) FROM city")[0] == "[(4079,)]"
    assert env.step("USE no_such_db")[0].startswith("Error executing query: ")


def test_mysql_comparison_semantics(env):
    env.reset(task_by_id(TASK))
    env.step("USE world_1")
    # Case- and trailing-space-insensitive string comparison (utf8mb4_general_ci).
    assert env.step("SELECT count(*) FROM city WHERE name = 'KABUL  '")[0] == "[(1,)]"
    env.step("USE car_1")
    # horsepower is a text column: MySQL compares it with a number numerically.
    assert env.step("SELECT count(*) FROM cars_data WHERE horsepower > 150")[0] == "[(10,)]"


def test_submit_scores_the_last_result(env):
    task = task_by_id(TASK)
    env.reset(task)
    env.step(task.fields["gold"])
    observation, reward, done, info = env.step("submit")
    assert (reward, done, info["submitted"]) == (1.0, True, True)
    assert env.step("SHOW TABLES")[2]  # nothing more happens after the end


def test_submit_after_an_error_or_nothing_scores_zero(env):
    task = task_by_id(TASK)
    env.reset(task)
    assert env.step("submit")[1] == 0.0
    env.reset(task)
    env.step(task.fields["gold"])
    env.step("SELECT broken FROM")
    assert env.step("submit")[1] == 0.0


def test_wrong_order_scores_negative(env):
    task = task_by_id(TASK)  # gold: names ordered ascending by final tables made
    env.reset(task)
    env.step(task.fields["gold"].replace("ORDER BY T2.Final_Table_Made", "ORDER BY T2.Final_Table_Made DESC"))
    assert env.step("submit")[1] < 0


def test_replay_is_deterministic(env):
    task = task_by_id(50)  # ties under ORDER BY count(*) DESC LIMIT 1
    actions = ["SHOW TABLES", task.fields["gold"], "submit"]
    runs = []
    for _ in range(3):
        env.reset(task)
        runs.append([env.step(action)[:3] for action in actions])
    assert runs[0] == runs[1] == runs[2]
    assert runs[0][-1][1] == 1.0


def test_malformed_turn_becomes_an_error_observation(env):
    task = task_by_id(TASK)
    episode = start_episode(env, task, policy="test")
    observation = apply_turn(env, episode, "I am not sure what to do", max_steps=10)
    assert observation.startswith("Invalid action:")
    assert episode.steps[0].action is None and not episode.done
    apply_turn(env, episode, "Thought: t\nAction: submit", max_steps=10)
    assert episode.termination == "submitted" and episode.reward == 0.0
    Episode.model_validate_json(episode.model_dump_json())  # records round-trip


def test_max_steps_ends_with_zero(env):
    episode = start_episode(env, task_by_id(TASK), policy="test")
    for _ in range(2):
        apply_turn(env, episode, "Thought: t\nAction: ```sql\nSELECT 1\n```", max_steps=2)
    assert episode.termination == "max_steps" and episode.reward == 0.0 and len(episode.steps) == 2


def test_repeated_invalid_turns_end_the_episode(env):
    episode = start_episode(env, task_by_id(TASK), policy="test")
    for _ in range(3):
        apply_turn(env, episode, "no action here", max_steps=10, max_invalid_turns=3)
    assert episode.termination == "invalid" and episode.reward == 0.0 and len(episode.steps) == 3


def test_a_valid_turn_resets_the_invalid_count(env):
    episode = start_episode(env, task_by_id(TASK), policy="test")
    for turn in ["x", "y", "Thought: t\nAction: ```sql\nSHOW TABLES\n```", "x", "y"]:
        apply_turn(env, episode, turn, max_steps=10, max_invalid_turns=3)
    assert not episode.done
