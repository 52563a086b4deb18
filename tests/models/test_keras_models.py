"""Keras models: build from params, train a few steps, predict, save/load, callbacks, optimizers.

TensorFlow is imported once for this module; every network trains on tiny inputs for 1-3 epochs.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from ser.models import MODELS, build_model, load_model, model_framework, model_input
from ser.models.base import N_CLASSES

km = pytest.importorskip("ser.models.keras_models")

KERAS = ["keras_mlp", "cnn1d", "cnn2d", "cnn_lstm", "dual_cnn_lstm", "cnn_attention"]
FAST = {"epochs": 3, "batch_size": 16}


def pooled_data(n_per_class: int = 10, dim: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(N_CLASSES, dim))
    y = np.repeat(np.arange(N_CLASSES), n_per_class)
    return (centres[y] + rng.normal(size=(len(y), dim))).astype(np.float32), y


def logmel_data(n_per_class: int = 10, frames: int = 40, mels: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noise plus a class-dependent loud band pair (class c lights mels 2c, 2c+1) pulsing in time."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(N_CLASSES), n_per_class)
    x = rng.normal(size=(len(y), frames, mels)).astype(np.float32)
    pulse = (np.sin(np.arange(frames) / 3.0) > 0).astype(np.float32)
    for i, c in enumerate(y):
        x[i, :, 2 * c: 2 * c + 2] += 2.5 * pulse[:, None] + 1.0
    return x, y


def data_for(kind: str) -> tuple[np.ndarray, np.ndarray]:
    return pooled_data() if model_input(kind) == "pooled" else logmel_data()


@pytest.fixture(scope="module", params=KERAS)
def trained(request, tmp_path_factory):
    """One model per kind, trained at its default size for 3 epochs with validation, then saved."""
    kind = request.param
    x, y = data_for(kind)
    model = build_model({"kind": kind}, seed=1, training=FAST)
    history = model.fit(x, y, x[::5], y[::5])
    folder = tmp_path_factory.mktemp(kind)
    files = model.save(folder)
    return kind, model, history, x, y, folder, files


def test_registry_metadata_matches_classes():
    for kind in KERAS:
        cls = MODELS[kind]
        assert (cls.kind, cls.input, cls.framework) == (kind, model_input(kind), model_framework(kind))
        assert model_framework(kind) == "keras"


def test_every_kind_trains_and_predicts_seven_probabilities(trained):
    kind, model, history, x, y, _, _ = trained
    assert model.kind == kind
    proba = model.predict_proba(x)
    assert proba.shape == (len(x), N_CLASSES)
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert model.params["input_shape"] == list(x.shape[1:])
    assert model.model.output_shape == (None, N_CLASSES)
    assert np.isfinite(history["loss"]).all()


def test_history_has_loss_val_loss_and_lr_per_epoch(trained):
    _, _, history, _, _, _, _ = trained
    n = len(history["loss"])
    assert 1 <= n <= FAST["epochs"]
    for key in ("loss", "val_loss", "accuracy", "val_accuracy", "lr"):
        assert len(history[key]) == n, key
    assert history["lr"] == [pytest.approx(1e-3)] * n
    assert all(isinstance(v, float) for v in history["val_loss"])


def test_save_load_gives_identical_probabilities(trained):
    kind, model, _, x, _, folder, files = trained
    assert sorted(f.name for f in files) == ["keras_model.json", "model.keras"]
    assert all(f.is_file() for f in files)
    meta = json.loads((folder / "keras_model.json").read_text())
    assert meta["kind"] == kind and meta["input_shape"] == list(x.shape[1:])
    again = load_model(kind, folder, {"kind": kind})
    assert again.params["input_shape"] == list(x.shape[1:])
    np.testing.assert_allclose(again.predict_proba(x), model.predict_proba(x), atol=1e-6)


def test_default_sizes_build_for_the_pipeline_shape():
    """The default networks build for 300 x 64 log-mel (and 100-d pooled) and stay small."""
    for kind in KERAS:
        model = build_model({"kind": kind}, seed=0, training={})
        model.build((100,) if model_input(kind) == "pooled" else (300, 64))
        assert model.model.output_shape == (None, N_CLASSES)
        assert model.model.count_params() < 400_000, (kind, model.model.count_params())
    dual = build_model({"kind": "dual_cnn_lstm"}, seed=0).build((300, 64))
    a, b = dual.get_layer("a_sequence").output.shape, dual.get_layer("b_sequence").output.shape
    assert a[1] == b[1] == 37  # input_pool halves time, then two time pools per branch: 300/2/2/2
    assert len([ly for ly in dual.layers if ly.name.startswith("a") and ly.name.endswith("_conv")]) == 2
    assert len([ly for ly in dual.layers if ly.name.startswith("b") and ly.name.endswith("_conv")]) == 3
    assert [ly.name for ly in dual.layers if "lstm" in ly.name and "drop" not in ly.name] == ["lstm0", "lstm1"]
    assert dual.get_layer("lstm0").kernel_regularizer is not None


def test_keras_mlp_learns_separable_blobs():
    x, y = pooled_data()
    model = build_model({"kind": "keras_mlp", "units": [32]}, seed=0, training={"epochs": 40, "batch_size": 16})
    model.fit(x, y)
    assert (model.predict(x) == y).mean() > 0.9


def test_cnn1d_learns_logmel_patterns():
    x, y = logmel_data()
    model = build_model({"kind": "cnn1d", "filters": [16]}, seed=0, training={"epochs": 15, "batch_size": 16})
    model.fit(x, y)
    assert (model.predict(x) == y).mean() > 0.9


def test_class_absent_from_training_gets_zero(tmp_path):
    x, y = logmel_data()
    keep = y != 4
    model = build_model({"kind": "cnn2d", "filters": [8]}, seed=0, training={"epochs": 1, "batch_size": 32})
    model.fit(x[keep], y[keep])
    proba = model.predict_proba(x)
    assert proba.shape == (len(x), N_CLASSES)
    assert np.all(proba[:, 4] == 0.0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    model.save(tmp_path)
    again = load_model("cnn2d", tmp_path)
    assert np.all(again.predict_proba(x)[:, 4] == 0.0)


def test_early_stopping_stops_on_a_plateau():
    x, y = pooled_data()
    # learning rate 0 (and no batchnorm/dropout): val_loss never improves after epoch 1
    model = build_model({"kind": "keras_mlp", "units": [8], "dropout": 0.0, "batchnorm": False}, seed=0,
                        training={"epochs": 30, "optimizer": "sgd", "learning_rate": 0.0,
                                  "early_stopping_patience": 2, "batch_size": 70})
    history = model.fit(x, y, x, y)
    assert len(history["loss"]) == 3 < 30
    assert len(set(history["val_loss"])) == 1


def test_reduce_lr_on_plateau_is_recorded():
    x, y = pooled_data()
    # a tiny learning rate moves val_loss by less than ReduceLROnPlateau's min_delta: a plateau
    model = build_model({"kind": "keras_mlp", "units": [8], "dropout": 0.0, "batchnorm": False}, seed=0,
                        training={"epochs": 4, "optimizer": "sgd", "learning_rate": 1e-7, "batch_size": 70,
                                  "reduce_lr_patience": 1, "reduce_lr_factor": 0.5, "min_lr": 1e-9,
                                  "early_stopping_patience": 50})
    history = model.fit(x, y, x, y)
    assert len(history["lr"]) == 4
    assert history["lr"][0] == pytest.approx(1e-7)
    assert history["lr"][-1] < history["lr"][0]
    assert history["lr"] == sorted(history["lr"], reverse=True)


def test_no_validation_means_no_callbacks_but_lr_history():
    x, y = pooled_data()
    model = build_model({"kind": "keras_mlp", "units": [8]}, seed=0, training={"epochs": 2, "batch_size": 35})
    history = model.fit(x, y)
    assert len(history["loss"]) == len(history["lr"]) == 2 and "val_loss" not in history


@pytest.mark.parametrize("name", ["adam", "rmsprop", "sgd", "adagrad", "adadelta", "adamax", "nadam"])
def test_every_optimizer_name_trains_one_step(name):
    x, y = pooled_data(n_per_class=2)
    model = build_model({"kind": "keras_mlp", "units": [4], "batchnorm": False}, seed=0,
                        training={"epochs": 1, "batch_size": 14, "optimizer": name, "learning_rate": 0.01})
    history = model.fit(x, y)
    assert np.isfinite(history["loss"]).all()
    assert type(model.model.optimizer).__name__.lower() == name
    assert history["lr"] == [pytest.approx(0.01)]


def test_unknown_optimizer_is_refused():
    x, y = pooled_data(n_per_class=1)
    model = build_model({"kind": "keras_mlp", "units": [4]}, seed=0, training={"epochs": 1, "optimizer": "lbfgs"})
    with pytest.raises(ValueError, match="lbfgs"):
        model.fit(x, y)


def test_sample_weight_changes_training_and_seed_repeats():
    x, y = pooled_data()
    spec = {"kind": "keras_mlp", "units": [16], "batchnorm": False, "dropout": 0.0}
    training = {"epochs": 3, "batch_size": 16}
    a = build_model(spec, seed=7, training=training)
    b = build_model(spec, seed=7, training=training)
    c = build_model(spec, seed=7, training=training)
    a.fit(x, y)
    b.fit(x, y)
    c.fit(x, y, sample_weight=np.where(y == 0, 5.0, 0.5))
    np.testing.assert_allclose(a.predict_proba(x), b.predict_proba(x), atol=1e-5)
    assert not np.allclose(a.predict_proba(x), c.predict_proba(x), atol=1e-3)


@pytest.mark.parametrize("kind", KERAS)
def test_unknown_hyper_parameter_names_it(kind):
    with pytest.raises(ValueError, match="filterz"):
        build_model({"kind": kind, "filterz": [8]}, seed=0)


def test_wrong_input_rank_is_refused():
    x, y = pooled_data(n_per_class=1)
    with pytest.raises(ValueError, match="logmel"):
        build_model({"kind": "cnn2d"}, seed=0, training={"epochs": 1}).fit(x, y)
    with pytest.raises(ValueError, match="pooled"):
        build_model({"kind": "keras_mlp"}, seed=0, training={"epochs": 1}).fit(x.reshape(7, 4, 5), y)
    with pytest.raises(RuntimeError):
        build_model({"kind": "cnn1d"}, seed=0).predict_proba(x)


def test_dual_branches_must_differ_and_time_pools_fit():
    with pytest.raises(ValueError, match="differ"):
        build_model({"kind": "dual_cnn_lstm", "branch_a_filters": [8, 8], "branch_b_filters": [8, 8]}).build((40, 16))
    with pytest.raises(ValueError, match="two LSTM"):
        build_model({"kind": "dual_cnn_lstm", "lstm_units": [8]}).build((40, 16))


def test_threads_are_capped():
    assert 1 <= km.configure_threads() <= km.available_cores()


def test_retraining_with_dropout_and_batchnorm_gives_identical_metrics():
    """Seeded, deterministic kernels: two fresh fits of the same network give the same numbers exactly
    (dropout, batch-norm and shuffling included), which is what keeps committed metrics reproducible."""
    x, y = pooled_data(n_per_class=12, dim=24, seed=3)
    training = {"epochs": 4, "batch_size": 16}
    runs = []
    for _ in range(2):
        model = build_model({"kind": "keras_mlp", "units": [32, 16], "dropout": 0.3, "batchnorm": True},
                            seed=11, training=training)
        history = model.fit(x[12:], y[12:], x[::6], y[::6])
        runs.append((history, model.predict_proba(x)))
    assert runs[0][0] == runs[1][0]
    assert np.array_equal(runs[0][1], runs[1][1])
    # and the seed matters: another seed trains another network
    other = build_model({"kind": "keras_mlp", "units": [32, 16], "dropout": 0.3, "batchnorm": True},
                        seed=12, training=training)
    assert other.fit(x[12:], y[12:], x[::6], y[::6])["loss"] != runs[0][0]["loss"]


def test_each_epoch_logs_one_line_with_validation_loss(caplog):
    x, y = pooled_data()
    model = build_model({"kind": "keras_mlp", "units": [8]}, seed=0, training={"epochs": 3, "batch_size": 35,
                                                                                "early_stopping_patience": 50})
    with caplog.at_level("INFO", logger="ser"):
        history = model.fit(x, y, x[::5], y[::5])
    epochs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("keras_mlp epoch ")]
    assert [m.split()[2] for m in epochs] == ["1/3", "2/3", "3/3"]
    assert f"val_loss {history['val_loss'][0]:.4f}" in epochs[0]
    assert model.stop_reason in {"epochs", "epoch_cap_still_falling"}


def test_early_stopping_is_announced(caplog):
    x, y = pooled_data()
    model = build_model({"kind": "keras_mlp", "units": [8], "dropout": 0.0, "batchnorm": False}, seed=0,
                        training={"epochs": 30, "optimizer": "sgd", "learning_rate": 0.0,
                                  "early_stopping_patience": 2, "batch_size": 70})
    with caplog.at_level("INFO", logger="ser"):
        model.fit(x, y, x, y)
    assert model.stopping() == {"epochs_run": 3, "stop_reason": "early_stopping"}
    assert any("early stopping after epoch 3" in r.getMessage() for r in caplog.records)


def test_epoch_cap_with_falling_validation_loss_is_a_warning(caplog):
    x, y = pooled_data()
    model = build_model({"kind": "keras_mlp", "units": [32], "dropout": 0.0, "batchnorm": False}, seed=0,
                        training={"epochs": 4, "batch_size": 16, "learning_rate": 1e-3})
    with caplog.at_level("INFO", logger="ser"):
        history = model.fit(x, y, x, y)
    assert history["val_loss"] == sorted(history["val_loss"], reverse=True)  # still falling at the cap
    assert model.stopping() == {"epochs_run": 4, "stop_reason": "epoch_cap_still_falling"}
    warned = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and "4-epoch cap with validation loss still falling" in warned[0].getMessage()


@pytest.mark.parametrize("losses, falling", [
    ([2.0, 1.5, 1.2, 1.0], True),     # best in the last two epochs
    ([2.0, 1.0, 1.1, 1.2], False),    # best two epochs before the end
    ([1.0, 1.0, 1.0, 1.0], False),    # flat
    ([2.0, 1.9], False),              # too short to say
])
def test_still_falling(losses, falling):
    assert km.still_falling(losses) is falling


def test_tensorflow_imports_without_start_up_noise():
    import subprocess
    import sys

    code = "from ser.tfenv import import_tensorflow; import_tensorflow(); print('ok')"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"
    assert "oneDNN" not in run.stderr and "absl::InitializeLog" not in run.stderr
    assert run.stderr.strip() == ""
