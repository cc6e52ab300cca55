"""The policy protocol: conversations in, `n` completions per conversation out.

A policy knows nothing about environments: it continues chat conversations (lists of
`{"role", "content"}` messages) with one assistant turn, and reports how many tokens it read and wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class PolicyError(RuntimeError):
    """The policy cannot generate (model missing, server unreachable, ...); the message says why."""


@dataclass(frozen=True)
class Completion:
    text: str
    generated_tokens: int
    prompt_tokens: int


class Policy(Protocol):
    name: str

    def generate(
        self,
        conversations: list[list[dict[str, str]]],
        n: int = 1,
        temperature: float = 0.0,
        top_p: float = 1.0,
        max_new_tokens: int = 256,
        seed: int | None = None,
    ) -> list[list[Completion]]:
        """`n` completions of each conversation's next assistant turn, in input order.

        Temperature 0 means greedy decoding. Generation stops at the end of the assistant turn.
        """
        ...
