"""Model turns ("Thought: ...\\nAction: ...") to actions.

Tolerant of what small models write (a missing thought, text after the action) and strict about
what is executed: an action is either the content of one fenced code block or the word `submit`.
Anything else yields no action and an error message for the agent, never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ACTION = re.compile(r"^\s*Action\s*:\s*", re.I | re.M)
_THOUGHT = re.compile(r"^\s*Thought\s*:\s*(.*?)\s*(?=^\s*Action\s*:|\Z)", re.I | re.M | re.S)
_FENCED = re.compile(r"```[ \t]*(?:sql|mysql)?[ \t]*\n?(.*?)```", re.I | re.S)
_SUBMIT = re.compile(r"submit\b", re.I)

FORMAT_HELP = (
    "Reply with 'Thought: <your reasoning>' and then 'Action: ' followed by one MySQL statement "
    "in a ```sql code block, or 'Action: submit'."
)


@dataclass(frozen=True)
class ParsedTurn:
    action: str | None  # what to execute; None when the turn holds no valid action
    thought: str | None
    well_formed: bool  # a thought, then exactly one action, nothing after it
    error: str | None = None  # why there is no action

    @property
    def observation(self) -> str:
        """What the agent sees when its turn had no valid action."""
        return f"Invalid action: {self.error}. {FORMAT_HELP}"


def parse_turn(text: str) -> ParsedTurn:
    thought_match = _THOUGHT.search(text)
    thought = thought_match.group(1) if thought_match and thought_match.group(1) else None
    action_match = _ACTION.search(text)
    if action_match is None:
        return ParsedTurn(None, thought, False, "no 'Action:' found")
    rest = text[action_match.end():]
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
