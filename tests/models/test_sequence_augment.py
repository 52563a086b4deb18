"""SpecAugment and mixup on the log-mel models' training batches, and the attention-pooling head.

Augmentation must change training batches only (seeded: the same seed gives the same batch) and leave
prediction and a saved model's inference exactly as without it.
"""
from __future__ import annotations

import numpy as np
import pytest

from ser.models import build_model, load_model
from ser.models.base import N_CLASSES
from ser.params import SequenceAugmentParams, SpecAugmentParams

km = pytest.importorskip("ser.models.keras_models")
keras = km.keras

MASKS = {"freq_masks": 2, "freq_width": 4, "time_masks": 2, "time_width": 8}


def logmel(n: int = 28, frames: int = 40, mels: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % N_CLASSES
    x = rng.normal(size=(n, frames, mels)).astype(np.float32) + y[:, None, None].astype(np.float32)
    return x, y


def test_spec_augment_masks_whole_bands_and_spans_in_training_only():
    x = np.ones((16, 40, 16), np.float32)
    layer = km.SpecAugment(**MASKS, seed=3)
    assert np.array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    assert set(np.unique(out)) <= {0.0, 1.0} and (out == 0).any()
    for clip in out:
        zero_bands = np.flatnonzero((clip == 0).all(axis=0))   # whole mel bands masked
        zero_frames = np.flatnonzero((clip == 0).all(axis=1))  # whole frames masked
        assert len(zero_bands) <= 2 * 4 and len(zero_frames) <= 2 * 8
        kept = np.ones_like(clip)
        kept[:, zero_bands] = 0
        kept[zero_frames, :] = 0
        assert np.array_equal(clip, kept)  # nothing but full bands and full frames is zeroed


def test_spec_augment_is_seeded():
    x = np.random.default_rng(1).normal(size=(8, 40, 16)).astype(np.float32)
    a = keras.ops.convert_to_numpy(km.SpecAugment(**MASKS, seed=5)(x, training=True))
    b = keras.ops.convert_to_numpy(km.SpecAugment(**MASKS, seed=5)(x, training=True))
    c = keras.ops.convert_to_numpy(km.SpecAugment(**MASKS, seed=6)(x, training=True))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_mixup_batches_are_seeded_soft_and_convex():
    x, y = logmel()
    w = np.where(y == 0, 2.0, 1.0).astype(np.float32)
    a = km.MixupBatches(x, y, w, batch_size=8, alpha=0.4, seed=11)
    b = km.MixupBatches(x, y, w, batch_size=8, alpha=0.4, seed=11)
    xa, ya, wa = a[0]
    xb, yb, wb = b[0]
    assert np.array_equal(xa, xb) and np.array_equal(ya, yb) and np.array_equal(wa, wb)
    assert len(a) == 4 and xa.shape == (8, 40, 16) and ya.shape == (8, N_CLASSES)
    np.testing.assert_allclose(ya.sum(axis=1), 1.0, atol=1e-6)
    rows = a.order[:8]
    assert not np.allclose(xa, x[rows])  # mixed
    # each mixed clip is lam * own + (1 - lam) * partner, lam read off its own label's weight
    assert ((ya > 0).sum(axis=1) <= 2).all()
    assert wa.min() >= 1.0 - 1e-6 and wa.max() <= 2.0 + 1e-6
    a.on_epoch_end()
    assert not np.array_equal(a.order, b.order)  # a new epoch reshuffles
    other = km.MixupBatches(x, y, w, batch_size=8, alpha=0.4, seed=12)
    assert not np.array_equal(other[0][0], xa)


def test_augmentation_leaves_inference_unchanged(tmp_path):
    """A network with the masks predicts exactly what the same weights predict without them, before and after
    save/load; mixup trains with soft labels and keeps the usual history keys."""
    x, y = logmel()
    spec = {"kind": "cnn2d", "filters": [8], "spec_augment": MASKS, "mixup_alpha": 0.2}
    aug = build_model(spec, seed=2, training={"epochs": 2, "batch_size": 8})
    history = aug.fit(x, y, x[::4], y[::4], sample_weight=np.ones(len(y)))
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"} and len(history["loss"]) >= 1
    assert aug.model.get_layer("spec_augment") is not None
    plain = build_model({"kind": "cnn2d", "filters": [8]}, seed=2)
    plain.build(x.shape[1:])
    for layer in plain.model.layers:
        if layer.weights:
            layer.set_weights(aug.model.get_layer(layer.name).get_weights())
    plain.classes_seen = aug.classes_seen
    np.testing.assert_allclose(aug.predict_proba(x), plain.predict_proba(x), atol=1e-6)
    aug.save(tmp_path)
    again = load_model("cnn2d", tmp_path)
    np.testing.assert_allclose(again.predict_proba(x), plain.predict_proba(x), atol=1e-6)


def test_mixup_training_is_seeded():
    x, y = logmel()
    spec = {"kind": "cnn2d", "filters": [8], "mixup_alpha": 0.3, "spec_augment": MASKS}
    runs = []
    for _ in range(2):
        model = build_model(spec, seed=4, training={"epochs": 2, "batch_size": 8, "early_stopping_patience": None})
        runs.append((model.fit(x, y)["loss"], model.predict_proba(x)))
    assert runs[0][0] == runs[1][0]
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    plain = build_model({"kind": "cnn2d", "filters": [8]}, seed=4,
                        training={"epochs": 2, "batch_size": 8, "early_stopping_patience": None})
    assert plain.fit(x, y)["loss"] != runs[0][0]


def test_augmentation_params_are_checked():
    with pytest.raises(ValueError, match="freq_width"):
        build_model({"kind": "cnn2d", "spec_augment": {"freq_width": -1}})
    with pytest.raises(ValueError, match="mixup_alpha"):
        build_model({"kind": "cnn_lstm", "mixup_alpha": -0.5})
    with pytest.raises(ValueError, match="mixup_alpha"):  # pooled models take no sequence augmentation
        build_model({"kind": "keras_mlp", "mixup_alpha": 0.2})
    model = build_model({"kind": "cnn1d", "spec_augment": {}}, seed=0)
    assert model.augment() == SequenceAugmentParams(spec_augment=SpecAugmentParams())


def test_attention_pooling_weights_frames():
    layer = km.AttentiveStatsPooling(units=4, std=True)
    x = np.random.default_rng(0).normal(size=(3, 10, 6)).astype(np.float32)
    out = keras.ops.convert_to_numpy(layer(x))
    assert out.shape == (3, 12)
    assert np.all(out[:, 6:] > 0)  # weighted std
    # identical frames: any weighting gives that frame as the mean and (almost) no spread
    same = np.repeat(x[:, :1], 10, axis=1)
    out = keras.ops.convert_to_numpy(layer(same))
    np.testing.assert_allclose(out[:, :6], x[:, 0], atol=1e-5)
    assert np.all(out[:, 6:] < 1e-2)


def test_cnn_attention_trains_saves_and_loads(tmp_path):
    x, y = logmel()
    model = build_model({"kind": "cnn_attention", "filters": [8, 8], "proj_units": 16, "attention_units": 8},
                        seed=0, training={"epochs": 1, "batch_size": 8})
    history = model.fit(x, y, x[::4], y[::4])
    assert len(history["loss"]) == 1 and np.isfinite(history["loss"]).all()
    assert model.model.get_layer("attention_pool").output.shape == (None, 32)
    proba = model.predict_proba(x)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    model.save(tmp_path)
    again = load_model("cnn_attention", tmp_path)
    np.testing.assert_allclose(again.predict_proba(x), proba, atol=1e-6)
    full = build_model({"kind": "cnn_attention"}, seed=0).build((300, 64))
    assert full.get_layer("to_sequence").output.shape[1] == 37  # 300 / 2 (input pool) / 2 / 2
