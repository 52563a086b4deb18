"""Soft voting: averaging math, member choice on validation only, stacking."""
from __future__ import annotations

import numpy as np
import pytest

from ser.ensemble import Stacker, average_probas, choose_members, uar


def onehot(labels, n=7, hi=0.7):
    """Rows with `hi` on the given class and the rest spread evenly."""
    p = np.full((len(labels), n), (1 - hi) / (n - 1))
    p[np.arange(len(labels)), labels] = hi
    return p


# -- averaging ----------------------------------------------------------------------------------


def test_average_probas_weighted_mean_by_hand():
    a = np.array([[1.0, 0, 0, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0, 0, 0]])
    b = np.array([[0, 1.0, 0, 0, 0, 0, 0], [0, 0, 1.0, 0, 0, 0, 0]])
    np.testing.assert_allclose(average_probas([a, b]), (a + b) / 2)
    out = average_probas([a, b], [3, 1])
    np.testing.assert_allclose(out[0], [0.75, 0.25, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(out[1], [0.375, 0.375, 0.25, 0, 0, 0, 0])
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


@pytest.mark.parametrize("weights", [[1.0], [-1.0, 2.0], [0.0, 0.0], [np.nan, 1.0]])
def test_average_probas_rejects_bad_weights(weights):
    p = onehot([0, 1])
    with pytest.raises(ValueError, match="weights"):
        average_probas([p, p], weights)


def test_average_probas_rejects_bad_shapes():
    with pytest.raises(ValueError):
        average_probas([onehot([0, 1]), onehot([0, 1, 2])])
    with pytest.raises(ValueError):
        average_probas([np.ones((2, 5))])
    with pytest.raises(ValueError):
        average_probas([])


# -- member choice -------------------------------------------------------------------------------


def test_uar_is_mean_recall_over_present_classes_and_per_group():
    y = np.array([0, 0, 1, 1])
    p = onehot([0, 1, 1, 1])
    assert uar(y, p) == pytest.approx((0.5 + 1.0) / 2)
    groups = np.array(["s1", "s1", "s2", "s2"])
    assert uar(y, p, groups) == pytest.approx((0.5 + 1.0) / 2)  # s1: only class 0, recall 0.5; s2: 1.0


def test_choose_members_uses_validation_only_even_when_test_disagrees():
    rng = np.random.default_rng(0)
    y_val = np.repeat(np.arange(7), 4)
    y_test = np.repeat(np.arange(7), 4)
    wrong = (y_val + 1) % 7
    # "good_val" is right on the validation speakers but wrong on test; "good_test" the opposite.
    val = {"good_test": onehot(np.where(rng.random(28) < 0.3, y_val, wrong)), "good_val": onehot(y_val)}
    test = {"good_test": onehot(y_test), "good_val": onehot((y_test + 1) % 7)}
    best_on_test = max(test, key=lambda n: uar(y_test, test[n]))
    assert best_on_test == "good_test"
    chosen = choose_members(val, y_val, k=1)
    assert chosen == ["good_val"]
    # the function cannot be handed test data by accident: shapes are checked against y_val
    with pytest.raises(ValueError):
        choose_members({"a": onehot(y_test[:5])}, y_val, k=1)


def test_choose_members_greedy_adds_only_while_the_average_improves():
    y = np.array([0, 0, 1, 1, 2, 2])
    # a: right on classes 0 and 1, confidently wrong on 2; b: right on 2 (and 0), weak elsewhere
    a = np.zeros((6, 7)); a[[0, 1], 0] = 0.9; a[[2, 3], 1] = 0.9; a[[4, 5], 3] = 0.9; a += 0.1 / 7
    b = np.zeros((6, 7)); b[[0, 1], 0] = 0.4; b[[2, 3], 3] = 0.4; b[[4, 5], 2] = 0.95; b += 0.05 / 7
    c = a.copy()  # a duplicate of a adds nothing
    assert uar(y, a) == pytest.approx(2 / 3)
    assert uar(y, (a + b) / 2) == pytest.approx(1.0)
    assert choose_members({"a": a, "b": b, "c": c}, y, k=3) == ["a", "b"]  # c would not improve: stop
    assert choose_members({"a": a, "b": b, "c": c}, y, k=1) == ["a"]
    assert choose_members({"c": c, "a": a}, y, k=1) == ["c"]  # a tie goes to the earlier name
    with pytest.raises(ValueError):
        choose_members({"a": a}, y, k=0)


def test_choose_members_with_groups_scores_mean_per_group_uar():
    y = np.array([0, 1, 0, 1, 1, 1])
    groups = np.array(["big", "big", "big", "big", "small", "small"])
    a = onehot([0, 1, 0, 1, 0, 0])   # perfect on "big", 0 on "small": pooled UAR 0.75, per-group 0.5
    b = onehot([1, 1, 1, 1, 1, 1])   # 0.5 on "big", 1.0 on "small": pooled UAR 0.5, per-group 0.75
    assert choose_members({"a": a, "b": b}, y, k=1) == ["a"]
    assert choose_members({"a": a, "b": b}, y, k=1, groups=groups) == ["b"]


# -- stacking ---------------------------------------------------------------------------------------


def test_stacker_learns_which_member_to_trust_and_fills_missing_classes():
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(6), 10)  # class 6 never occurs in validation
    val = {"noise": rng.dirichlet(np.ones(7), len(y)), "good": onehot(y, hi=0.5)}
    stacker = Stacker(C=10.0).fit(val, y)
    out = stacker.predict_proba(val)
    assert out.shape == (len(y), 7)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    assert np.all(out[:, 6] == 0)
    assert uar(y, out) == 1.0
    assert stacker.to_dict() == {"kind": "stacking", "C": 10.0, "members": ["noise", "good"]}
