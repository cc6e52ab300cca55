"""The one conversation format used for SFT, sampling, rollouts, DPO and evaluation.

A conversation opens with a user message holding the environment's instruction and the task's
first observation, optionally preceded by a worked example as real chat turns. Agent turns are
assistant messages; observations are user messages (`Observation: ...`). Models render it with
their own chat template.
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
    "webshop": (
        "You are a shopping agent in a web shop: find and buy the product that the instruction "
        "describes. Pages are shown as text, with [SEP] between their elements. Work step by step: "
        "each turn, write one line 'Thought: ' with your reasoning, then 'Action: ' followed by "
        "either search[keywords] to search the shop, or click[value] to click a button, a product ID "
        "or an option shown on the page. Select the options the instruction asks for before you "
        "click[Buy Now]: buying ends the episode and the purchase is scored."
    ),
}
INSTRUCTIONS["webshop-full"] = INSTRUCTIONS["webshop"]

_WEB_GOAL = "i need a blue cotton t-shirt in size large, and price lower than 30.00 dollars"
_WEB_ITEM = (f"Instruction: [SEP] {_WEB_GOAL} [SEP] Back to Search [SEP] < Prev [SEP] color [SEP] blue [SEP] "
             "black [SEP] size [SEP] medium [SEP] large [SEP] Men's Cotton Crew T-Shirt [SEP] Price: $19.99 [SEP] "
             "Rating: N.A. [SEP] Description [SEP] Features [SEP] Reviews [SEP] Buy Now")

# One worked example per environment, given as real chat turns: measured with SmolLM2-135M on
# 8 test tasks, greedy first turns were valid 5 times of 8 with the example as turns, 1 with the
# same example pasted into the instruction text.
EXAMPLES = {
    "intercode-sql": {
        "observation": "Database: shop\nQuestion: How many customers live in Paris?",
        "steps": [
            ("Thought: I need to know which tables this database has.\nAction: ```sql\nSHOW TABLES\n```",
             "[('customer',), ('orders',)]"),
            ("Thought: The question involves customer; let me check its columns.\nAction: ```sql\nDESCRIBE customer\n```",
             "[('id', 'int(11)', 'NO', 'PRI', None, ''), ('name', 'text', 'YES', '', None, ''), "
             "('city', 'text', 'YES', '', None, '')]"),
            ("Thought: Now I can write the query that answers the question.\n"
             "Action: ```sql\nSELECT count(*) FROM customer WHERE city = 'Paris'\n```",
             "[(42,)]"),
            ("Thought: The query returned the answer, so I submit it.\nAction: submit", None),
        ],
    },
    "webshop": {
        "observation": f"WebShop [SEP] Instruction: [SEP] {_WEB_GOAL} [SEP] Search",
        "steps": [
            ("Thought: I should search for a blue cotton t-shirt.\nAction: search[blue cotton t-shirt]",
             f"Instruction: [SEP] {_WEB_GOAL} [SEP] Back to Search [SEP] Page 1 (Total results: 2) [SEP] Next > [SEP] "
             "B0EXAMPLE1 [SEP] Men's Cotton Crew T-Shirt [SEP] $19.99 [SEP] B0EXAMPLE2 [SEP] Women's Wool Sweater [SEP] $45.0"),
            ("Thought: B0EXAMPLE1 is a cotton t-shirt below 30 dollars.\nAction: click[B0EXAMPLE1]", _WEB_ITEM),
            ("Thought: The instruction asks for blue.\nAction: click[blue]", _WEB_ITEM),
            ("Thought: And for size large.\nAction: click[large]", _WEB_ITEM),
            ("Thought: The t-shirt is blue, cotton, large and costs less than 30 dollars, so I buy it.\n"
             "Action: click[Buy Now]", None),
        ],
    },
}
EXAMPLES["webshop-full"] = EXAMPLES["webshop"]
NEW_TASK = "Now a new task.\n\n"


def conversation_start(env: str, observation: str, icl_shots: int = 0) -> list[dict]:
    """The opening messages of an episode: the instruction and the task, after the worked example
    when `icl_shots` > 0 (one example is all we ship; more would not fit small contexts)."""
    try:
        instruction = INSTRUCTIONS[env]
    except KeyError:
        raise KeyError(f"no instruction written for environment {env!r}") from None
    if icl_shots == 0:
        return [{"role": "user", "content": f"{instruction}\n\n{observation}"}]
    example = EXAMPLES[env]
    messages = [{"role": "user", "content": f"{instruction}\n\n{example['observation']}"}]
    for turn, example_observation in example["steps"]:
        messages.append(agent_message(turn))
        if example_observation is not None:
            messages.append(observation_message(example_observation))
    messages.append({"role": "user", "content": NEW_TASK + observation})
    return messages


def observation_message(observation: str) -> dict:
    return {"role": "user", "content": f"Observation: {observation}"}


def agent_message(turn: str) -> dict:
    return {"role": "assistant", "content": turn}
