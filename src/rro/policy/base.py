"""The policy protocol: conversations in, `n` completions per conversation out.

A policy knows nothing about environments: it continues chat conversations (lists of
`{"role", "content"}` messages) with one assistant turn, and reports how many tokens it read and wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from rro.seeds import derive_seed

# A call's seed: one per conversation (what reproducible, batch-independent sampling needs), one
# for the whole call (conversation i then gets a seed derived from it and i), or None (unseeded).
Seeds = int | Sequence[int] | None


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
        seed: Seeds = None,
    ) -> list[list[Completion]]:
        """`n` completions of each conversation's next assistant turn, in input order.

        Temperature 0 means greedy decoding. Generation stops at the end of the assistant turn.
        With per-conversation seeds, completion j of conversation i is drawn with
        `sample_seeds(seed, ...)[i][j]` whatever else is in the call (as far as the backend allows).
        """
        ...


def sample_seeds(seed: Seeds, conversations: int, n: int) -> list[list[int]] | None:
    """The seed of every completion a call asks for: `[conversation][sample]`."""
    if seed is None:
        return None
    if isinstance(seed, int):
        per_conversation = [derive_seed(seed, i) for i in range(conversations)]
    else:
        per_conversation = list(seed)
        if len(per_conversation) != conversations:
            raise ValueError(f"got {len(per_conversation)} seeds for {conversations} conversations")
    return [[derive_seed(s, j) for j in range(n)] for s in per_conversation]
