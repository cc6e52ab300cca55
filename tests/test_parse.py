from rro.agent.parse import parse_turn


def test_sql_block_is_the_action():
    turn = parse_turn("Thought: count them\nAction: ```sql\nSELECT count(*)\nFROM t\n```", "intercode-sql")
    assert turn.action == "SELECT count(*)\nFROM t"
    assert turn.thought == "count them" and turn.well_formed and turn.error is None


def test_submit():
    turn = parse_turn("Thought: done\nAction: submit", "intercode-sql")
    assert turn.action == "submit" and turn.well_formed


def test_missing_thought_still_acts_but_is_not_well_formed():
    turn = parse_turn("Action: ```sql\nSHOW TABLES\n```", "intercode-sql")
    assert turn.action == "SHOW TABLES" and not turn.well_formed


def test_text_after_the_action_is_tolerated_but_flagged():
    turn = parse_turn("Thought: x\nAction: ```sql\nSELECT 1\n```\nObservation: I think [(1,)]", "intercode-sql")
    assert turn.action == "SELECT 1" and not turn.well_formed


def test_bare_sql_is_not_executed():
    turn = parse_turn("Thought: x\nAction: SELECT 1", "intercode-sql")
    assert turn.action is None and "code block" in turn.error
    assert turn.observation.startswith("Invalid action:")


def test_unclosed_block_is_not_executed():
    assert parse_turn("Thought: x\nAction: ```sql\nSELECT 1", "intercode-sql").action is None


def test_empty_block_and_missing_action():
    assert parse_turn("Thought: x\nAction: ```sql\n```", "intercode-sql").action is None
    assert parse_turn("I will look at the tables.", "intercode-sql").error == "no 'Action:' found"
