"""Model turns ("Thought: ...\\nAction: ...") to actions.

Tolerant of what small models write (a missing thought, text after the action) and strict about
what is executed. This module finds the thought and the text after `Action:`; the environment's
own parser (`EnvSpec.parse_action`) reads the action in it: InterCode-SQL takes the content of one
fenced code block or the word `submit`, WebShop `search[keywords]` or `click[value]`. Anything
else yields no action and an error message for the agent, never an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rro.envs.base import spec

_ACTION = re.compile(r"^\s*Action\s*:\s*", re.I | re.M)
_THOUGHT = re.compile(r"^\s*Thought\s*:\s*(.*?)\s*(?=^\s*Action\s*:|\Z)", re.I | re.M | re.S)


@dataclass(frozen=True)
class ParsedTurn:
    action: str | None  # what to execute; None when the turn holds no valid action
    thought: str | None
    well_formed: bool  # a thought, then exactly one action, nothing after it
    error: str | None = None  # why there is no action
    help: str = ""  # how to write a valid turn in this environment

    @property
    def observation(self) -> str:
        """What the agent sees when its turn had no valid action."""
        return f"Invalid action: {self.error}. {self.help}"


def parse_turn(text: str, env: str) -> ParsedTurn:
    """The action in an agent turn written for environment `env`."""
    env_spec = spec(env)
    thought_match = _THOUGHT.search(text)
    thought = thought_match.group(1) if thought_match and thought_match.group(1) else None
    action_match = _ACTION.search(text)
    if action_match is None:
        return ParsedTurn(None, thought, False, "no 'Action:' found", env_spec.format_help)
    parsed = env_spec.parse_action(text[action_match.end():])
    if parsed.action is None:
        return ParsedTurn(None, thought, False, parsed.error or "no valid action", env_spec.format_help)
    return ParsedTurn(parsed.action, thought, thought is not None and not parsed.trailing, help=env_spec.format_help)
