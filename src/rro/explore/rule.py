"""The step rule that is RRO, as pure functions of the candidates tried (docs/design.md, "The rule").

At a state the walk draws candidates one at a time and estimates each one's Q. After each draw:

    rises(q, prev)  = q > bar(prev)
    bar(prev)       = prev + margin, held just below the top of the reward range with the ceiling
                      rule (rise_at_max), so that a candidate reaching the maximum reward rises
    stop sampling   when a candidate rose (rising only; fixed never stops early) or K were drawn
    chosen          the candidate with the highest Q, the earliest drawn of equals
    pairs           (chosen, other) for every other candidate with a different action and
                    Q(other) <= Q(chosen) - pair_gap

The exploration walk (rro.explore.walk) and its replay (rro.explore.replay) both decide through
`decide_step`; the baselines' pair rule (`prefers_expert`: IPR and outcome-level pairs) lives here too.
Nothing here samples, estimates or reads a file: the functions see actions and Q values only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Float slack when a mean of rewards is compared with the maximum reward.
CEILING_TOLERANCE = 1e-9


@dataclass(frozen=True)
class RiseRule:
    """When a candidate's Q counts as rising above the previous value."""

    margin: float
    ceiling: float | None = None  # with rise_at_max: the maximum reward, which rises whatever the previous value

    @classmethod
    def of(cls, margin: float, rise_at_max: bool, reward_range: tuple[float, float]) -> RiseRule:
        return cls(margin, reward_range[1] if rise_at_max else None)

    def bar(self, prev: float) -> float:
        """The value a candidate must exceed: prev + margin, held just below the ceiling when there is one
        (so the adaptive budget keeps rolling out a candidate that can still reach the maximum)."""
        bar = prev + self.margin
        return bar if self.ceiling is None else min(bar, self.ceiling - CEILING_TOLERANCE)

    def rises(self, q: float, prev: float) -> bool:
        return q > self.bar(prev)


@dataclass(frozen=True)
class Tried:
    """A candidate as the rule sees it: its parsed action (None when malformed) and its Q."""

    action: str | None
    q: float


@dataclass(frozen=True)
class StepDecision:
    """What the rule makes of the candidates tried so far at one state."""

    done: bool  # stop drawing: one rose (rising) or K were drawn
    rose: bool  # the verdict: the chosen candidate rose above the bar
    bar: float  # what a candidate had to exceed
    chosen: int  # the chosen candidate's place among those tried
    rejected: tuple[int, ...]  # the places of the candidates paired with it, as rejected, in the order drawn


def decide_step(tried: Sequence[Tried], prev: float, rule: RiseRule, *, max_candidates: int,
                stop_at_rise: bool, pair_gap: float) -> StepDecision:
    """The step's decision over the candidates `tried` (at least one) against the previous value
    `prev`: whether to stop drawing, which candidate is chosen, and which are paired with it.
    `stop_at_rise` is the rising strategy's early stop (fixed draws all `max_candidates`)."""
    if not tried:
        raise ValueError("a step is decided over at least one tried candidate")
    chosen = max(range(len(tried)), key=lambda i: tried[i].q)  # first of equals: the earliest drawn
    best = tried[chosen]
    rose = rule.rises(best.q, prev)
    rejected = tuple(i for i, other in enumerate(tried)
                     if other.action != best.action and other.q <= best.q - pair_gap)
    return StepDecision(done=(stop_at_rise and rose) or len(tried) >= max_candidates, rose=rose, bar=rule.bar(prev),
                        chosen=chosen, rejected=rejected)


def prefers_expert(q_expert: float, q_agent: float, tau: float) -> bool:
    """The baselines' pair rule (IPR's step pairs, ETO's outcome pairs): the expert's side is chosen
    over the policy's when its value is higher by more than `tau`. (IPR also needs the two actions to
    differ: equal actions are never paired.)"""
    return q_expert - q_agent > tau
