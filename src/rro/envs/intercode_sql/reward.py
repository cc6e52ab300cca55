"""InterCode-SQL's reward, computed exactly as InterCode does.

Rows are stringified, the two results are compared as multisets by intersection over union, and a
non-empty intersection is scaled by Kendall's tau between the order of the shared rows in the
agent's result and in the gold result (rounded to two decimals). Range [-1, 1]; success iff 1.0.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Sequence

from scipy.stats import kendalltau

Rows = Sequence[Sequence[object]]


def _in_multiset_order(rows: list[str], shared: Counter) -> list[str]:
    """The rows of `rows` that belong to the multiset `shared`, each kept as often as it is shared."""
    remaining = shared.copy()
    kept = []
    for row in rows:
        if remaining[row] > 0:
            remaining[row] -= 1
            kept.append(row)
    return kept


def intercode_reward(agent_rows: Rows | None, gold_rows: Rows | None) -> float:
    """Score the agent's last result against the gold result.

    `None` means the statement errored or produced no result set: 0 for the agent. A gold query that
    errors counts as an empty result (`[]`), as InterCode scores it.
    """
    if agent_rows is None:
        return 0.0
    if gold_rows is None:
        gold_rows = []
    agent = [str(tuple(row)) for row in agent_rows]
    gold = [str(tuple(row)) for row in gold_rows]
    agent_counts, gold_counts = Counter(agent), Counter(gold)
    intersection = agent_counts & gold_counts
    union = agent_counts | gold_counts  # per-row maximum of the two counts
    if not union:
        return 1.0  # both empty
    reward = sum(intersection.values()) / sum(union.values())
    if intersection:
        agent_order = _in_multiset_order(agent, intersection)
        gold_order = _in_multiset_order(gold, intersection)
        with warnings.catch_warnings():
            # One shared row (or all rows equal) leaves tau undefined; InterCode then keeps the IoU.
            warnings.simplefilter("ignore")
            tau = kendalltau(agent_order, gold_order, nan_policy="omit").statistic
        if not math.isnan(tau):
            reward = round(tau * reward, 2)
    return float(reward)
