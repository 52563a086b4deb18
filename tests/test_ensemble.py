"""Soft voting: averaging math, member choice on validation only, members reading different inputs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ser.ensemble import Member, SoftVoting, Stacker, average_probas, choose_members, uar


def onehot(labels, n=7, hi=0.7):
    """Rows with `hi` on the given class and the rest spread evenly."""
    p = np.full((len(labels), n), (1 - hi) / (n - 1))
    p[np.arange(len(labels)), labels] = hi
    return p


class FakeModel:
    """A fitted stand-in: fixed probabilities; records the input it was given."""

    def __init__(self, proba):
        self.proba = np.asarray(proba, dtype=np.float64)
        self.seen = None

    def predict_proba(self, x):
        self.seen = np.asarray(x)
        return self.proba[: len(x)]


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


def test_soft_voting_predict_proba_is_weighted_member_mean():
    pa = np.array([[0.6, 0.4, 0, 0, 0, 0, 0], [0.2, 0.8, 0, 0, 0, 0, 0]])
    pb = np.array([[0.0, 0.1, 0.9, 0, 0, 0, 0], [0.1, 0.1, 0.8, 0, 0, 0, 0]])
    ens = SoftVoting.from_fitted([(Member("a", {"kind": "logistic"}, 1.0), FakeModel(pa)),
                                  (Member("b", {"kind": "knn"}, 3.0), FakeModel(pb))])
    x = {"pooled": np.zeros((2, 4), np.float32)}
    expected = (1 * pa + 3 * pb) / 4
    np.testing.assert_allclose(ens.predict_proba(x), expected)
    np.testing.assert_array_equal(ens.predict(x), [2, 2])
    # equal weights: row 1 becomes class 1 (0.45 vs 0.4 for class 2)
    ens.members[1].weight = 1.0
    np.testing.assert_allclose(ens.predict_proba(x), (pa + pb) / 2)
    np.testing.assert_array_equal(ens.predict(x), [2, 1])


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


# -- mixed inputs ---------------------------------------------------------------------------------


def test_members_read_their_own_inputs():
    pa, pb = onehot([0, 1, 2]), onehot([3, 4, 5])
    ma, mb = FakeModel(pa), FakeModel(pb)
    ens = SoftVoting.from_fitted([(Member("svc", {"kind": "svc"}), ma),
                                  (Member("knn_eg", {"kind": "knn"}, input="egemaps"), mb)])
    assert ens.inputs == ["egemaps", "pooled"]
    x = {"pooled": np.zeros((3, 10)), "egemaps": np.ones((3, 88)), "logmel": np.zeros((3, 5, 4))}
    np.testing.assert_allclose(ens.predict_proba(x), (pa + pb) / 2)
    assert ma.seen.shape == (3, 10) and mb.seen.shape == (3, 88)
    with pytest.raises(KeyError, match="egemaps"):
        ens.predict_proba({"pooled": x["pooled"]})
    with pytest.raises(ValueError, match="one row per clip"):
        ens.predict_proba({"pooled": x["pooled"], "egemaps": x["egemaps"][:2]})


def test_unfitted_and_bad_members():
    ens = SoftVoting([({"kind": "logistic"}, 1.0)])
    with pytest.raises(RuntimeError, match="before fit"):
        ens.predict_proba({"pooled": np.zeros((2, 3))})
    with pytest.raises(ValueError, match="weight"):
        Member("x", {"kind": "logistic"}, weight=0)
    with pytest.raises(ValueError, match="unknown model kind"):
        Member("x", {"kind": "no_such_model"})
    with pytest.raises(ValueError, match="unique"):
        SoftVoting([("a", {"kind": "logistic"}, 1.0), ("a", {"kind": "knn"}, 1.0)])
    with pytest.raises(ValueError):
        SoftVoting([])


def test_to_dict_round_trip_is_json():
    ens = SoftVoting([("svc", {"kind": "svc", "C": 10.0}, 2.0), ("lr", {"kind": "logistic", "C": 0.1}, 1.0, "fusion")],
                     seed=7)
    data = json.loads(json.dumps(ens.to_dict()))
    assert data == {"kind": "soft_voting", "seed": 7, "members": [
        {"name": "svc", "spec": {"kind": "svc", "C": 10.0}, "weight": 2.0, "input": "pooled"},
        {"name": "lr", "spec": {"kind": "logistic", "C": 0.1}, "weight": 1.0, "input": "fusion"}]}
    again = SoftVoting.from_dict(data)
    assert again.to_dict() == ens.to_dict() and not again.fitted


def _separable(n_per_class, dim, rng, classes=range(7)):
    y = np.repeat(np.array(list(classes)), n_per_class)
    centres = rng.normal(0, 3, (7, dim))
    return y, centres


def test_fit_members_sklearn_on_two_inputs():
    rng = np.random.default_rng(1)
    y, centres = _separable(6, 5, rng)
    pooled = (centres[y] + rng.normal(0, 0.5, (len(y), 5))).astype(np.float32)
    other = (centres[y][:, :3] * 2 + rng.normal(0, 0.5, (len(y), 3))).astype(np.float32)
    ens = SoftVoting([("lr", {"kind": "logistic", "C": 1.0}, 1.0),
                      ("knn", {"kind": "knn", "n_neighbors": 3}, 1.0, "other")])
    ens.fit_members({"pooled": pooled, "other": other}, y)
    x = {"pooled": pooled, "other": other}
    proba = ens.predict_proba(x)
    assert proba.shape == (len(y), 7)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    members = ens.member_probas(x)
    np.testing.assert_allclose(proba, (members["lr"] + members["knn"]) / 2)
    assert uar(y, proba) > 0.9


@pytest.mark.slow
def test_fit_members_pooled_and_logmel():
    """A pooled sklearn member and a log-mel Keras member in one ensemble."""
    rng = np.random.default_rng(2)
    y, centres = _separable(4, 6, rng)
    pooled = (centres[y] + rng.normal(0, 0.3, (len(y), 6))).astype(np.float32)
    logmel = (np.repeat(centres[y][:, None, :], 12, axis=1) + rng.normal(0, 0.3, (len(y), 12, 6))).astype(np.float32)
    ens = SoftVoting([("lr", {"kind": "logistic"}, 2.0),
                      ("cnn", {"kind": "cnn1d", "filters": [8], "dense_units": 8}, 1.0)],
                     seed=0, training={"epochs": 2, "batch_size": 8, "early_stopping_patience": None})
    assert ens.inputs == ["logmel", "pooled"]
    ens.fit_members({"pooled": pooled, "logmel": logmel}, y)
    x = {"pooled": pooled, "logmel": logmel}
    members = ens.member_probas(x)
    assert members["cnn"].shape == (len(y), 7) and members["lr"].shape == (len(y), 7)
    np.testing.assert_allclose(ens.predict_proba(x), (2 * members["lr"] + members["cnn"]) / 3, atol=1e-6)


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
