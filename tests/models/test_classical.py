"""scikit-learn models and the model registry (no TensorFlow in this module)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ser.models import MODELS, build_model, default_params, load_model, model_framework, model_input, split_spec
from ser.models.base import N_CLASSES

CLASSICAL = ["random_forest", "svc", "gradient_boosting", "knn", "mlp", "bagging", "adaboost", "decision_tree",
             "logistic"]
KERAS = ["keras_mlp", "cnn1d", "cnn2d", "cnn_lstm", "dual_cnn_lstm", "cnn_attention"]
REPO = Path(__file__).resolve().parents[2]


def blobs(n_per_class: int = 10, dim: int = 20, seed: int = 0, spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Seven well separated Gaussian blobs, already standardised-looking."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(N_CLASSES, dim))
    y = np.repeat(np.arange(N_CLASSES), n_per_class)
    x = centres[y] + rng.normal(scale=spread, size=(len(y), dim))
    return x, y


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return blobs()


def test_registry_lists_every_kind_without_importing():
    assert sorted(MODELS) == sorted(CLASSICAL + KERAS)
    assert len(MODELS) == 15 and "svc" in MODELS and "nope" not in MODELS
    assert {model_framework(k) for k in CLASSICAL} == {"sklearn"}
    assert {model_framework(k) for k in KERAS} == {"keras"}
    assert [model_input(k) for k in KERAS] == ["pooled", "logmel", "logmel", "logmel", "logmel", "logmel"]
    assert {model_input(k) for k in CLASSICAL} == {"pooled"}


@pytest.mark.parametrize("kind", CLASSICAL)
def test_registry_metadata_matches_class(kind):
    cls = MODELS[kind]
    assert (cls.kind, cls.input, cls.framework) == (kind, model_input(kind), model_framework(kind))


@pytest.mark.parametrize("kind", CLASSICAL)
def test_every_kind_trains_and_predicts_seven_columns(kind, data):
    x, y = data
    model = build_model({"kind": kind}, seed=3, training={"epochs": 2})
    assert model.kind == kind and model.framework == "sklearn" and model.input == "pooled"
    assert model.fit(x, y) == {}
    proba = model.predict_proba(x)
    assert proba.shape == (len(x), N_CLASSES)
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    acc = (model.predict(x) == y).mean()
    assert acc > (0.9 if kind in {"random_forest", "svc", "logistic", "knn", "decision_tree"} else 0.6), acc


@pytest.mark.parametrize("kind", ["random_forest", "svc", "logistic"])
def test_separable_blobs_generalise(kind):
    x, y = blobs(n_per_class=10, seed=1)
    xt, yt = blobs(n_per_class=10, seed=1)  # same centres, fresh noise below
    rng = np.random.default_rng(99)
    xt = xt + rng.normal(scale=0.5, size=xt.shape)
    model = build_model({"kind": kind}, seed=0, training={})
    model.fit(x, y)
    assert (model.predict(x) == y).mean() > 0.9
    assert (model.predict(xt) == yt).mean() > 0.9


@pytest.mark.parametrize("kind", CLASSICAL)
def test_class_absent_from_training_gets_zero(kind, data):
    x, y = data
    keep = y != 3
    model = build_model({"kind": kind}, seed=0, training={})
    model.fit(x[keep], y[keep])
    proba = model.predict_proba(x)
    assert proba.shape == (len(x), N_CLASSES)
    assert np.all(proba[:, 3] == 0.0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert 3 not in set(model.predict(x))


@pytest.mark.parametrize("kind", ["random_forest", "svc", "gradient_boosting", "knn", "mlp", "bagging", "adaboost",
                                  "decision_tree", "logistic"])
def test_save_load_roundtrip(kind, data, tmp_path):
    x, y = data
    spec = {"kind": kind, "n_estimators": 20} if kind in ("random_forest", "bagging") else {"kind": kind}
    model = build_model(spec, seed=5, training={})
    model.fit(x, y)
    files = model.save(tmp_path / "m")
    assert [f.name for f in files] == ["model.skops", "model.json"] and all(f.is_file() for f in files)
    again = load_model(kind, tmp_path / "m", spec)
    assert again.kind == kind and again.params == model.params and again.seed == 5
    np.testing.assert_allclose(again.predict_proba(x), model.predict_proba(x), atol=1e-6)


def test_load_refuses_another_kind(data, tmp_path):
    x, y = data
    model = build_model({"kind": "decision_tree"}, seed=0)
    model.fit(x, y)
    model.save(tmp_path)
    with pytest.raises(ValueError, match="decision_tree"):
        load_model("random_forest", tmp_path)


def test_params_pass_through_and_seed(data):
    x, y = data
    model = build_model({"kind": "random_forest", "n_estimators": 7, "max_depth": 4}, seed=11)
    model.fit(x, y)
    est = model.estimator
    assert (est.n_estimators, est.max_depth, est.random_state, est.n_jobs, est.class_weight) == \
        (7, 4, 11, 1, "balanced")
    svc = build_model({"kind": "svc"}, seed=0)
    svc.fit(x, y)
    inner = svc.estimator.estimator  # CalibratedClassifierCV(SVC): sklearn 1.9's replacement for probability=True
    assert (inner.C, inner.gamma, inner.kernel, inner.class_weight) == (10.0, "scale", "rbf", "balanced")
    ada = build_model({"kind": "adaboost", "n_estimators": 5, "estimator__max_depth": 2}, seed=0)
    ada.fit(x, y)
    assert ada.estimator.n_estimators == 5 and ada.estimator.estimator.max_depth == 2
    mlp = build_model({"kind": "mlp", "hidden_layer_sizes": [16]}, seed=0)
    mlp.fit(x, y)
    assert mlp.estimator.hidden_layer_sizes == (16,) and mlp.estimator.early_stopping is True


def test_svc_trains_with_a_single_example_of_a_class():
    rng = np.random.default_rng(0)
    y = np.array([0] * 8 + [1] * 8 + [2] + [3] * 3)
    x = rng.normal(size=(len(y), 5)) + 3 * y[:, None]
    model = build_model({"kind": "svc", "C": 1.0}, seed=0)
    model.fit(x, y, sample_weight=np.ones(len(y)))
    proba = model.predict_proba(x)
    assert proba.shape == (len(y), N_CLASSES)
    assert np.all(proba[:, 4:] == 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="probability"):
        build_model({"kind": "svc", "probability": True}, seed=0)


def test_same_seed_same_model(data):
    x, y = data
    a = build_model({"kind": "random_forest", "n_estimators": 15}, seed=4)
    b = build_model({"kind": "random_forest", "n_estimators": 15}, seed=4)
    c = build_model({"kind": "random_forest", "n_estimators": 15}, seed=5)
    for m in (a, b, c):
        m.fit(x, y)
    xq = x + 0.8
    np.testing.assert_array_equal(a.predict_proba(xq), b.predict_proba(xq))
    assert not np.array_equal(a.predict_proba(xq), c.predict_proba(xq))


def test_sample_weight_is_used_where_supported(data):
    x, y = data
    w = np.where(y == 2, 0.0, 1.0)
    tree = build_model({"kind": "decision_tree"}, seed=0)
    tree.fit(x, y, sample_weight=w)
    assert 2 not in set(tree.predict(x))
    knn = build_model({"kind": "knn"}, seed=0)  # no sample_weight in KNeighborsClassifier.fit: ignored
    knn.fit(x, y, sample_weight=w)
    assert (knn.predict(x) == y).mean() == 1.0


@pytest.mark.parametrize("kind", CLASSICAL)
def test_every_kind_accepts_sample_weight(kind, data):
    x, y = data
    model = build_model({"kind": kind}, seed=0)
    model.fit(x, y, sample_weight=np.linspace(0.5, 2.0, len(y)))
    np.testing.assert_allclose(model.predict_proba(x).sum(axis=1), 1.0, atol=1e-9)


def test_unknown_kind_names_it_and_lists_known():
    with pytest.raises(ValueError, match="'xgboostish'") as err:
        build_model({"kind": "xgboostish"}, seed=0)
    assert "random_forest" in str(err.value) and "dual_cnn_lstm" in str(err.value)
    with pytest.raises(ValueError, match="kind"):
        build_model({"C": 1}, seed=0)
    with pytest.raises(ValueError, match="xgboostish"):
        load_model("xgboostish", "/nonexistent")


@pytest.mark.parametrize("kind", CLASSICAL)
def test_unknown_hyper_parameter_names_it(kind):
    with pytest.raises(ValueError, match="n_treez"):
        build_model({"kind": kind, "n_treez": 3}, seed=0)
    with pytest.raises(ValueError, match="n_treez"):
        MODELS[kind]({"n_treez": 3})


def test_split_spec_and_defaults():
    assert split_spec({"kind": "svc", "C": 3}) == ("svc", {"C": 3})
    assert default_params("random_forest")["n_estimators"] == 300
    assert default_params("svc")["C"] == 10.0


def test_bad_inputs_are_refused(data):
    x, y = data
    model = build_model({"kind": "logistic"}, seed=0)
    with pytest.raises(RuntimeError):
        model.predict_proba(x)
    with pytest.raises(ValueError, match="pooled"):
        model.fit(x.reshape(len(x), 4, 5), y)
    with pytest.raises(ValueError, match="labels"):
        model.fit(x, y + 1)


def test_importing_models_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "import numpy as np\n"
        "import ser.models\n"
        "from ser.models import build_model, MODELS, model_input\n"
        "assert 'sklearn' not in sys.modules, 'sklearn imported eagerly'\n"
        "m = build_model({'kind': 'random_forest', 'n_estimators': 5}, seed=0, training={})\n"
        "x = np.random.default_rng(0).normal(size=(14, 3)); y = np.arange(14) % 7\n"
        "m.fit(x, y); m.predict_proba(x)\n"
        "sorted(MODELS); model_input('cnn2d')\n"
        "bad = [k for k in ('tensorflow', 'keras') if k in sys.modules]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_load_refuses_a_type_outside_the_trusted_list(data, tmp_path, monkeypatch):
    """A stored model needing a type nobody listed is refused before anything is constructed."""
    import ser.models.classical as classical

    x, y = data
    model = build_model({"kind": "decision_tree"}, seed=0)
    model.fit(x, y)
    model.save(tmp_path)
    monkeypatch.setattr(classical, "TRUSTED_TYPES", ())
    with pytest.raises(classical.UntrustedModelError, match="sklearn.tree._tree.Tree"):
        load_model("decision_tree", tmp_path)


def test_load_refuses_a_pickle_and_never_runs_it(tmp_path):
    """An old joblib artefact is refused by name; its payload (which would write a file) never runs."""
    import pickle

    from ser.models.classical import UntrustedModelError

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "model.joblib").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(UntrustedModelError, match="pickle"):
        load_model("svc", tmp_path)
    assert not marker.exists()

