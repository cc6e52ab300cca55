"""The one conversation format used for SFT, sampling, rollouts, DPO and evaluation.

A conversation opens with one user message: the environment's instruction, optionally an
in-context example, and the task's first observation. Agent turns are assistant messages;
observations are user messages. Models render it with their own chat template.
"""

from __future__ import annotations

INSTRUCTIONS = {
    "intercode-sql": (
        "You are a SQL agent answering a question about a MySQL database. Work step by step: "
        "each turn, write one line 'Thought: ' with your reasoning, then 'Action: ' followed by "
        "either one MySQL statement in a ```sql code block, or the word submit.\n"
        "You can inspect the database (SHOW TABLES, DESCRIBE table) and run SELECT queries; the "
        "database is read-only. After each statement you see its result as a list of rows, or an "
        "error. When your last query's result answers the question, reply with 'Action: submit': "
        "the result of your last query is your answer."
    ),
}

EXAMPLES = {
    "intercode-sql": (
        "Example:\n"
        "Database: shop\nQuestion: How many customers live in Paris?\n"
        "Thought: I need to know which tables this database has.\n"
        "Action: ```sql\nSHOW TABLES\n```\n"
        "Observation: [('customer',), ('orders',)]\n"
        "Thought: The question involves customer; let me check its columns.\n"
        "Action: ```sql\nDESCRIBE customer\n```\n"
        "Observation: [('id', 'int(11)', 'NO', 'PRI', None, ''), ('name', 'text', 'YES', '', None, ''), "
        "('city', 'text', 'YES', '', None, '')]\n"
        "Thought: Now I can write the query that answers the question.\n"
        "Action: ```sql\nSELECT count(*) FROM customer WHERE city = 'Paris'\n```\n"
        "Observation: [(42,)]\n"
        "Thought: The query returned the answer, so I submit it.\n"
        "Action: submit"
    ),
}


def first_message(env: str, observation: str, icl_shots: int = 0) -> dict:
    """The opening user message of an episode."""
    try:
        parts = [INSTRUCTIONS[env]]
    except KeyError:
        raise KeyError(f"no instruction written for environment {env!r}") from None
    if icl_shots > 0:
        parts.append(EXAMPLES[env])  # one example is all we ship; more would not fit small contexts
    parts.append(observation)
    return {"role": "user", "content": "\n\n".join(parts)}


def observation_message(observation: str) -> dict:
    return {"role": "user", "content": f"Observation: {observation}"}


def agent_message(turn: str) -> dict:
    return {"role": "assistant", "content": turn}
