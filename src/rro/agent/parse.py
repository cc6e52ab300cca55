"""Model turns ("Thought: ...\\nAction: ...") to actions.

Tolerant of what small models write (a missing thought, text after the action) and strict about
what is executed. InterCode-SQL: the content of one fenced code block, or the word `submit`.
WebShop: `search[keywords]` or `click[value]`. Anything else yields no action and an error message
for the agent, never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ACTION = re.compile(r"^\s*Action\s*:\s*", re.I | re.M)
_THOUGHT = re.compile(r"^\s*Thought\s*:\s*(.*?)\s*(?=^\s*Action\s*:|\Z)", re.I | re.M | re.S)
_FENCED = re.compile(r"```[ \t]*(?:sql|mysql)?[ \t]*\n?(.*?)```", re.I | re.S)
_SUBMIT = re.compile(r"submit\b", re.I)
_WEB_ACTION = re.compile(r"(search|click)\[(.*)\]", re.I)  # to the last ] of the line

SQL_HELP = (
    "Reply with 'Thought: <your reasoning>' and then 'Action: ' followed by one MySQL statement "
    "in a ```sql code block, or 'Action: submit'."
)
WEB_HELP = "Reply with 'Thought: <your reasoning>' and then 'Action: search[keywords]' or 'Action: click[value]'."
FORMAT_HELP = {"intercode-sql": SQL_HELP, "webshop": WEB_HELP, "webshop-full": WEB_HELP}


@dataclass(frozen=True)
class ParsedTurn:
    action: str | None  # what to execute; None when the turn holds no valid action
    thought: str | None
    well_formed: bool  # a thought, then exactly one action, nothing after it
    error: str | None = None  # why there is no action
    help: str = SQL_HELP  # how to write a valid turn in this environment

    @property
    def observation(self) -> str:
        """What the agent sees when its turn had no valid action."""
        return f"Invalid action: {self.error}. {self.help}"


def parse_turn(text: str, env: str) -> ParsedTurn:
    """The action in an agent turn written for environment `env`."""
    thought_match = _THOUGHT.search(text)
    thought = thought_match.group(1) if thought_match and thought_match.group(1) else None
    action_match = _ACTION.search(text)
    help = FORMAT_HELP.get(env, SQL_HELP)
    if action_match is None:
        return ParsedTurn(None, thought, False, "no 'Action:' found", help)
    rest = text[action_match.end():]
    if env.startswith("webshop"):
        return _web_action(rest, thought, help)
    if rest.lstrip().startswith("```"):
        block = _FENCED.match(rest.lstrip())
        if block is None:
            return ParsedTurn(None, thought, False, "the ```sql code block is not closed")
        action = block.group(1).strip()
        if not action:
            return ParsedTurn(None, thought, False, "the code block is empty")
        trailing = rest.lstrip()[block.end():].strip()
    elif submit := _SUBMIT.match(rest):
        action = "submit"
        trailing = rest[submit.end():].strip()
    else:
        return ParsedTurn(None, thought, False, "the action must be a ```sql code block or submit")
    return ParsedTurn(action, thought, thought is not None and not trailing)


def _web_action(rest: str, thought: str | None, help: str) -> ParsedTurn:
    line, _, after = rest.strip().partition("\n")
    match = _WEB_ACTION.match(line)
    if match is None:
        return ParsedTurn(None, thought, False, "the action must be search[keywords] or click[value]", help)
    if not match.group(2).strip():
        return ParsedTurn(None, thought, False, f"{match.group(1).lower()}[] is empty", help)
    trailing = (line[match.end():] + after).strip()
    action = f"{match.group(1).lower()}[{match.group(2).strip()}]"
    return ParsedTurn(action, thought, thought is not None and not trailing, help=help)
