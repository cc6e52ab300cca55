"""Seeds derived from what is being sampled, never from call or batch counters.

A completion's seed names what it samples: the run's seed, the task, the state (the agent turns
taken so far), and which sample it is there (candidate k, rollout j, the step inside a rollout).
The same sample therefore gets the same seed however tasks are chunked, batched, resumed or spread
over workers (docs/design.md, "The layers"). Python's `hash` is salted per process, so the
derivation hashes a stable text form with BLAKE2b instead.
"""

from __future__ import annotations

import hashlib
import json


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any JSON-serialisable parts (ints, strings, lists of turns, ...)."""
    text = json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") >> 1


def state_seed(seed: int, kind: str, env: str, task_id: str, turns: tuple[str, ...], index: int) -> int:
    """The seed of the `index`-th sample of `kind` ("candidate", "rollout") in a state: a task and
    the agent turns taken in it so far."""
    return derive_seed(seed, kind, env, task_id, turns, index)
