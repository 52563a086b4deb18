"""GroupNormalizer: fitted on training speakers only, per-group statistics, fallback, round trip."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ser.speaker_norm import GroupNormalizer, Standardizer
from ser.train import Table, fit_and_score, scale


def speakers_data(seed=0, n=12, d=4, speakers=("a", "b", "c", "d")):
    """Rows of several speakers, each with its own offset and spread (the 'voice')."""
    rng = np.random.default_rng(seed)
    xs, groups = [], []
    for i, s in enumerate(speakers):
        xs.append(rng.normal(10 * i, 1 + i, (n, d)))
        groups += [s] * n
    return np.vstack(xs).astype(np.float32), np.array(groups)


def table(x, groups, y=None, augmented=None):
    n = len(x)
    y = np.arange(n) % 7 if y is None else y
    augmented = np.zeros(n, bool) if augmented is None else augmented
    meta = pd.DataFrame({"utt_id": [f"u{i}" for i in range(n)], "corpus": "c", "speaker": groups, "split": "train",
                         "fold": 0, "augmented": augmented, "source": [f"u{i}" for i in range(n)]})
    return Table(np.asarray(x, np.float32), np.asarray(y, np.int64), meta)


def z(x):
    x = np.asarray(x, np.float64)
    return (x - x.mean(axis=0)) / x.std(axis=0)


def arrays_equal(a, b):
    return all(np.array_equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


# -- training speakers only -------------------------------------------------------------------


def test_fit_and_score_statistics_come_from_training_speakers_only():
    x, g = speakers_data()
    train_rows, test_rows = g != "d", g == "d"
    train, test = table(x[train_rows], g[train_rows]), table(x[test_rows], g[test_rows])
    crazy = table(x[test_rows] * 1000 + 1e6, g[test_rows])
    _, scaler1, _, _, _ = fit_and_score({"kind": "logistic"}, {}, 0, train, None, {"test": test},
                                        norm=GroupNormalizer("speaker", 5))
    _, scaler2, _, _, _ = fit_and_score({"kind": "logistic"}, {}, 0, train, None, {"test": crazy},
                                        norm=GroupNormalizer("speaker", 5))
    assert arrays_equal(scaler1.to_arrays(), scaler2.to_arrays())
    # and those statistics are the training rows' own
    np.testing.assert_allclose(scaler1.fallback.mean, x[train_rows].astype(np.float64).mean(axis=0), rtol=1e-6)


def test_transforming_test_rows_never_changes_the_fitted_state():
    x, g = speakers_data()
    tr = g != "d"
    norm = GroupNormalizer("speaker", 5).fit(x[tr], g[tr])
    before = {k: v.copy() for k, v in norm.to_arrays().items()}
    test = x[~tr].copy()
    norm.transform(test, g[~tr])
    test[:] = test * 1e4 - 3e7
    norm.transform(test, g[~tr])
    assert arrays_equal(before, norm.to_arrays())


def test_a_test_speakers_output_depends_only_on_its_own_rows():
    x, g = speakers_data()
    tr = np.isin(g, ["a", "b"])
    norm = GroupNormalizer("speaker", 5).fit(x[tr], g[tr])
    cd = np.isin(g, ["c", "d"])
    both = norm.transform(x[cd], g[cd])
    alone = norm.transform(x[g == "c"], g[g == "c"])
    np.testing.assert_allclose(both[g[cd] == "c"], alone, rtol=1e-6)
    wild = x[cd].copy()
    wild[g[cd] == "d"] = wild[g[cd] == "d"] * 500 - 1e5
    np.testing.assert_allclose(norm.transform(wild, g[cd])[g[cd] == "c"], alone, rtol=1e-6)
    # exactly: own z-score, then the stored post scaler
    expected = (z(x[g == "c"]) - norm.post.mean) / norm.post.scale
    np.testing.assert_allclose(alone, expected, rtol=1e-5, atol=1e-5)


def test_augmented_rows_do_not_enter_group_statistics():
    x, g = speakers_data()
    tr = g != "d"
    aug = np.zeros(len(x), bool)
    aug[np.flatnonzero(tr)[::3]] = True
    xa = x.copy()
    xa[aug] = xa[aug] * 50 + 77  # wildly different "augmented" copies
    norm = GroupNormalizer("speaker", 5).fit(xa[tr], g[tr], ~aug[tr])
    out = norm.transform(xa[tr], g[tr], ~aug[tr])
    for s in ("a", "b", "c"):
        rows = (g[tr] == s) & ~aug[tr]
        np.testing.assert_allclose(out[rows], (z(xa[tr][rows]) - norm.post.mean) / norm.post.scale, rtol=1e-5, atol=1e-5)
    # scale() passes ~augmented as the statistics rows
    t = table(xa[tr], g[tr], augmented=aug[tr])
    np.testing.assert_allclose(scale(norm, t), out)


# -- small groups --------------------------------------------------------------------------------


def test_small_group_uses_fallback_statistics_exactly():
    x = np.array([[1.0, 10.0], [3.0, 14.0], [5.0, 18.0], [7.0, 22.0], [9.0, 26.0], [11.0, 30.0]], np.float32)
    g = np.array(["a"] * 6)
    norm = GroupNormalizer("speaker", min_group_size=5).fit(x, g)
    # fallback: training mean (6, 20), population std (sqrt(35/3), 2 * sqrt(35/3))
    np.testing.assert_allclose(norm.fallback.mean, [6.0, 20.0])
    np.testing.assert_allclose(norm.fallback.scale, [np.sqrt(35 / 3), 2 * np.sqrt(35 / 3)])
    # group "a" (6 rows >= 5) is z-scored by itself: the post scaler is then the identity
    np.testing.assert_allclose(norm.post.mean, [0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(norm.post.scale, [1.0, 1.0], rtol=1e-6)
    small = np.array([[6.0, 20.0], [6.0 + np.sqrt(35 / 3), 20.0 - 2 * np.sqrt(35 / 3)], [100.0, 0.0]], np.float32)
    out = norm.transform(small, np.array(["new"] * 3))  # 3 rows < 5: fallback
    expected = np.array([[0.0, 0.0], [1.0, -1.0], [94 / np.sqrt(35 / 3), -20 / (2 * np.sqrt(35 / 3))]])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    # with min_group_size 3 the same three rows are standardised by their own statistics
    own = GroupNormalizer("speaker", min_group_size=3).fit(x, g).transform(small, np.array(["new"] * 3))
    np.testing.assert_allclose(own, z(small), rtol=1e-5, atol=1e-5)


def test_small_training_group_is_fitted_through_the_fallback():
    x, g = speakers_data(n=12)
    g = g.copy()
    g[:3] = "tiny"  # 3 rows of speaker a relabelled: a group below min_group_size
    norm = GroupNormalizer("speaker", 5).fit(x, g)
    fb = Standardizer().fit(x)
    per_group = np.empty_like(x)
    for s in np.unique(g):
        rows = g == s
        per_group[rows] = fb.transform(x[rows]) if rows.sum() < 5 else z(x[rows])
    np.testing.assert_allclose(norm.post.mean, per_group.astype(np.float64).mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.transform(x, g)[:3], (fb.transform(x[:3]) - norm.post.mean) / norm.post.scale,
                               rtol=1e-5, atol=1e-5)


# -- mode none, round trip, errors ------------------------------------------------------------------


def test_mode_none_is_plain_global_standardisation():
    x, g = speakers_data()
    other = speakers_data(seed=5)[0]
    norm = GroupNormalizer("none").fit(x, g)
    expected = (other - x.astype(np.float64).mean(axis=0)) / x.astype(np.float64).std(axis=0)
    np.testing.assert_allclose(norm.transform(other, g), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(norm.transform(other), norm.transform(other, g))  # groups ignored


def test_round_trip_through_arrays():
    x, g = speakers_data()
    for mode in ("none", "speaker"):
        norm = GroupNormalizer(mode, 7).fit(x[g != "d"], g[g != "d"])
        again = GroupNormalizer.from_arrays(norm.to_arrays(), norm.config())
        assert again.config() == {"mode": mode, "min_group_size": 7}
        np.testing.assert_array_equal(again.transform(x, g), norm.transform(x, g))


def test_logmel_shaped_input_is_scaled_per_band():
    rng = np.random.default_rng(0)
    x = rng.normal(5, 2, (10, 8, 3)).astype(np.float32)
    g = np.array(["a"] * 5 + ["b"] * 5)
    out = GroupNormalizer("speaker", 2).fit(x, g).transform(x, g)
    assert out.shape == x.shape
    np.testing.assert_allclose(out.reshape(-1, 3).mean(axis=0), 0, atol=1e-5)


def test_constant_feature_passes_through_centred():
    x = np.column_stack([np.arange(6.0), np.full(6, 4.0)]).astype(np.float32)
    out = GroupNormalizer("none").fit(x).transform(x)
    np.testing.assert_allclose(out[:, 1], 0.0)


def test_errors():
    with pytest.raises(ValueError, match="mode"):
        GroupNormalizer("corpus")
    with pytest.raises(ValueError, match="min_group_size"):
        GroupNormalizer("speaker", 1)
    with pytest.raises(RuntimeError, match="before fit"):
        GroupNormalizer().transform(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="features"):
        GroupNormalizer().fit(np.zeros((3, 2))).transform(np.zeros((3, 4)))
