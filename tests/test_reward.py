import math

import pytest

from rro.envs.intercode_sql.reward import intercode_reward


def test_identical_results_score_one():
    assert intercode_reward([(1, "a"), (2, "b")], [(1, "a"), (2, "b")]) == 1.0


def test_reversed_order_gives_negative_reward():
    # All rows shared (IoU 1) but in opposite order: Kendall's tau is -1.
    assert intercode_reward([(3,), (2,), (1,)], [(1,), (2,), (3,)]) == -1.0


def test_partly_reordered_scales_by_tau():
    # tau([a, c, b], [a, b, c]) = 1/3 -> round(1/3 * 1.0, 2)
    assert intercode_reward([("a",), ("c",), ("b",)], [("a",), ("b",), ("c",)]) == 0.33


def test_duplicates_count_as_a_multiset():
    # intersection {1: 1, 2: 1} = 2 rows; union {1: 2, 2: 1} = 3 rows; shared rows in the same order.
    assert intercode_reward([(1,), (1,), (2,)], [(1,), (2,)]) == 0.67


def test_partial_overlap_is_iou():
    assert intercode_reward([(1,), (2,), (3,)], [(1,), (2,), (4,)]) == 0.5


def test_single_shared_row_keeps_iou_unrounded():
    # One shared row leaves tau undefined: the IoU (1/3) is kept as is, not rounded.
    reward = intercode_reward([(1,), (5,)], [(1,), (2,)])
    assert math.isclose(reward, 1 / 3) and reward != 0.33


def test_empty_versus_empty_scores_one():
    assert intercode_reward([], []) == 1.0


def test_no_overlap_scores_zero():
    assert intercode_reward([(9,)], [(1,), (2,)]) == 0.0


@pytest.mark.parametrize("gold", [[(1,)], [], None])
def test_error_or_no_result_set_scores_zero(gold):
    assert intercode_reward(None, gold) == 0.0


def test_errored_gold_counts_as_empty():
    assert intercode_reward([], None) == 1.0
    assert intercode_reward([(1,)], None) == 0.0


def test_rows_compare_by_their_string_form():
    # As in InterCode: 1 and 1.0 are different rows once stringified.
    assert intercode_reward([(1,)], [(1.0,)]) == 0.0
