"""The step rule (rro.explore.rule) pinned on hand-made candidate lists: when drawing stops, which
candidate is chosen, which are paired, and the bar, including the ceiling, margin and pair_gap edges."""

import pytest

from rro.explore.rule import CEILING_TOLERANCE, RiseRule, StepDecision, Tried, decide_step, prefers_expert

STRICT = RiseRule(margin=0.0)
CEILING = RiseRule.of(0.0, rise_at_max=True, reward_range=(-1.0, 1.0))


def decide(tried, prev, rule=STRICT, k=5, rising=True, gap=0.01) -> StepDecision:
    return decide_step([Tried(a, q) for a, q in tried], prev, rule, max_candidates=k, stop_at_rise=rising, pair_gap=gap)


def test_a_rise_stops_drawing_and_pairs_the_lower_candidates():
    decision = decide([("a", 0.2), ("b", 0.1), ("c", 0.6)], prev=0.5)
    assert decision == StepDecision(done=True, rose=True, bar=0.5, chosen=2, rejected=(0, 1))


def test_no_rise_goes_on_until_k_then_chooses_the_best():
    assert decide([("a", 0.2), ("b", 0.5)], prev=0.5, k=3) == StepDecision(False, False, 0.5, 1, (0,))
    assert decide([("a", 0.2), ("b", 0.5), ("c", 0.3)], prev=0.5, k=3) == StepDecision(True, False, 0.5, 1, (0, 2))


def test_equal_to_the_bar_is_not_a_rise():
    assert not decide([("a", 0.5)], prev=0.5).rose
    assert decide([("a", 0.5 + 1e-12)], prev=0.5).rose


def test_fixed_never_stops_early_but_still_judges_the_rise():
    decision = decide([("a", 0.9)], prev=0.0, k=3, rising=False)
    assert not decision.done and decision.rose
    assert decide([("a", 0.9), ("b", 0.1), ("c", 0.0)], prev=0.0, k=3, rising=False).done


def test_the_earliest_of_equal_best_is_chosen():
    decision = decide([("a", 0.4), ("b", 0.7), ("c", 0.7), ("d", 0.1)], prev=0.9, k=4)
    assert decision.chosen == 1 and decision.rejected == (0, 3)  # c ties with the chosen: no pair


def test_margin_raises_the_bar():
    rule = RiseRule(margin=0.3)
    assert decide([("a", 0.7)], prev=0.5, rule=rule).bar == pytest.approx(0.8)
    assert not decide([("a", 0.7)], prev=0.5, rule=rule).rose
    assert decide([("a", 0.81)], prev=0.5, rule=rule).rose
    assert decide([("a", -0.2)], prev=-0.6, rule=rule).rose  # below zero too


def test_the_ceiling_rises_whatever_the_previous_value():
    # Strictly, nothing exceeds a previous value already at the maximum: all K are drawn, no pair made
    # between equals. With the ceiling rule the maximum rises at once.
    strict = decide([("a", 1.0)], prev=1.0, k=3)
    assert not strict.rose and not strict.done and strict.bar == 1.0
    at_max = decide([("a", 1.0)], prev=1.0, rule=CEILING, k=3)
    assert at_max.rose and at_max.done and at_max.bar == 1.0 - CEILING_TOLERANCE
    # A margin cannot lift the bar past the ceiling, and below the ceiling the margin still counts.
    with_margin = RiseRule.of(0.2, rise_at_max=True, reward_range=(0.0, 1.0))
    assert decide([("a", 1.0)], prev=0.9, rule=with_margin).rose
    assert not decide([("a", 0.95)], prev=0.9, rule=with_margin).rose
    # A mean of rewards that misses the maximum by float error still counts as reaching it.
    assert decide([("a", 1.0 - 1e-12)], prev=1.0, rule=CEILING).rose
    assert not decide([("a", 0.99)], prev=1.0, rule=CEILING).rose


def test_pair_gap_edges():
    # Exactly pair_gap below the chosen pairs; less does not.
    assert decide([("a", 0.25), ("b", 0.5)], prev=0.0, rising=False, k=2, gap=0.25).rejected == (0,)
    assert decide([("a", 0.26), ("b", 0.5)], prev=0.0, rising=False, k=2, gap=0.25).rejected == ()
    # A gap of 0 pairs equal values of different actions, never a candidate with itself or its own action.
    decision = decide([("a", 0.5), ("b", 0.5), ("a", 0.2)], prev=0.9, k=3, gap=0.0)
    assert decision.chosen == 0 and decision.rejected == (1,)


def test_malformed_candidates_have_no_action_and_pair_like_any_other():
    decision = decide([(None, -1.0), ("a", 0.5), (None, 0.0)], prev=0.0, k=3)
    assert decision.chosen == 1 and decision.rejected == (0, 2)
    assert decide([(None, 0.1), (None, -1.0)], prev=0.5, k=2).rejected == ()  # the same (no) action


def test_a_step_needs_a_candidate():
    with pytest.raises(ValueError, match="at least one"):
        decide([], prev=0.0)


def test_the_baselines_pair_rule():
    assert prefers_expert(1.0, 0.5, tau=0.0) and not prefers_expert(0.5, 0.5, tau=0.0)
    assert not prefers_expert(1.0, 0.5, tau=0.5) and prefers_expert(1.0, 0.49, tau=0.5)
