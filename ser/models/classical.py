"""scikit-learn classifiers over pooled feature vectors.

Inputs arrive already standardised (the artefact holds the scaler), so no model here scales.
Every hyper-parameter in a model's params block passes straight to the estimator and is checked
against `estimator.get_params(deep=True)` (nested keys such as `estimator__max_depth` work for
bagging/adaboost). Defaults keep `n_jobs=1`: parallelism across models is handled by the caller.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, ClassVar

import json

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    AdaBoostClassifier,
    BaggingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from ser.models.base import N_CLASSES, SerModel

MODEL_FILE = "model.skops"
META_FILE = "model.json"
LEGACY_PICKLE = "model.joblib"
# Types beyond skops's built-in safe list that the estimators here need; nothing else is loaded.
TRUSTED_TYPES = (
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    "sklearn.tree._tree.Tree",
)


class UntrustedModelError(ValueError):
    """A stored model that would need a type outside TRUSTED_TYPES (or a pickle) to load."""


class SklearnModel(SerModel):
    """A scikit-learn estimator behind the `SerModel` interface."""

    input: ClassVar[str] = "pooled"
    framework: ClassVar[str] = "sklearn"
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, params: dict[str, Any] | None = None, seed: int = 42, training: dict[str, Any] | None = None):
        super().__init__(params, seed, training)
        self.check_params(self.params)
        self.estimator: BaseEstimator | None = None
        self.classes_: np.ndarray | None = None

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def make_estimator(cls) -> BaseEstimator:
        """The unconfigured estimator (subclasses override)."""
        raise NotImplementedError

    @classmethod
    def default_params(cls) -> dict[str, Any]:
        """The defaults this package sets (on top of scikit-learn's)."""
        return dict(cls.DEFAULTS)

    @classmethod
    def accepted_params(cls) -> set[str]:
        """Every key a params block may carry: the estimator's `get_params(deep=True)` keys."""
        est = cls.make_estimator().set_params(**cls.DEFAULTS)
        return set(est.get_params(deep=True)) - {"random_state"}

    def build_estimator(self, y: np.ndarray | None = None) -> BaseEstimator:
        """The configured estimator; `y` (the training labels) lets a subclass size itself to the data."""
        est = self.make_estimator()
        est.set_params(**self.DEFAULTS)
        est.set_params(**self.params)
        seeded = {k: self.seed for k in est.get_params(deep=False) if k == "random_state"}
        est.set_params(**seeded)
        return est

    # -- SerModel -----------------------------------------------------------------------------
    def fit(self, x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
            sample_weight: np.ndarray | None = None) -> dict[str, list[float]]:
        x = np.asarray(x)
        y = np.asarray(y).astype(int)
        if x.ndim != 2:
            raise ValueError(f"{self.kind} expects pooled (n, d) features, got shape {x.shape}")
        if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
            raise ValueError(f"labels must be in 0..{N_CLASSES - 1}")
        est = self.build_estimator(y)
        fit_kwargs: dict[str, Any] = {}
        if sample_weight is not None and "sample_weight" in inspect.signature(est.fit).parameters:
            fit_kwargs["sample_weight"] = np.asarray(sample_weight, dtype=float)
        est.fit(x, y, **fit_kwargs)
        self.estimator = est
        self.classes_ = np.asarray(est.classes_, dtype=int)
        return {}

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.estimator is None or self.classes_ is None:
            raise RuntimeError(f"{self.kind}: predict_proba before fit/load")
        x = np.asarray(x)
        proba = self.estimator.predict_proba(x)
        out = np.zeros((x.shape[0], N_CLASSES), dtype=float)
        out[:, self.classes_] = proba
        return out

    def save(self, folder: Path) -> list[Path]:
        """The estimator as skops (no pickle), its kind, params, seed and classes as JSON."""
        import skops.io as sio

        if self.estimator is None:
            raise RuntimeError(f"{self.kind}: save before fit")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path, meta_path = folder / MODEL_FILE, folder / META_FILE
        sio.dump(self.estimator, path)
        meta = {"kind": self.kind, "params": self.params, "seed": self.seed,
                "classes": [int(c) for c in self.classes_]}
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        return [path, meta_path]

    @classmethod
    def load(cls, folder: Path, params: dict[str, Any] | None = None) -> SklearnModel:
        """Load with skops's safe loader: types outside its defaults and TRUSTED_TYPES are refused, never run."""
        import skops.io as sio

        folder = Path(folder)
        path = folder / MODEL_FILE
        if not path.is_file() and (folder / LEGACY_PICKLE).is_file():
            raise UntrustedModelError(f"{folder / LEGACY_PICKLE} is a pickle (loading it could run any code); "
                                      "retrain to store the model as skops")
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        if meta.get("kind") != cls.kind:
            raise ValueError(f"{folder} holds a {meta.get('kind')!r} model, not {cls.kind!r}")
        unknown = sorted(set(sio.get_untrusted_types(file=path)) - set(TRUSTED_TYPES))
        if unknown:
            raise UntrustedModelError(f"{path} needs types outside the trusted list: {', '.join(unknown)}; refused")
        estimator = sio.load(path, trusted=list(TRUSTED_TYPES))
        model = cls(params if params is not None else meta["params"], seed=meta["seed"])
        model.estimator = estimator
        model.classes_ = np.asarray(meta["classes"], dtype=int)
        return model


class RandomForestModel(SklearnModel):
    kind = "random_forest"
    DEFAULTS = {"n_estimators": 300, "n_jobs": 1, "class_weight": "balanced", "min_samples_leaf": 1}

    @classmethod
    def make_estimator(cls) -> BaseEstimator:
        return RandomForestClassifier()


class SVCModel(SklearnModel):
    """RBF SVC with Platt-scaled probabilities.

    scikit-learn 1.9 deprecates `SVC(probability=True)`; its replacement, used here, is
    `CalibratedClassifierCV(SVC(...), method="sigmoid", ensemble=False)`: sigmoid calibration fitted
    on cross-validated decision values, then one SVC fitted on all the data. Params are SVC's own.
    """

    kind = "svc"
    DEFAULTS = {"C": 10.0, "kernel": "rbf", "gamma": "scale", "class_weight": "balanced"}
    CALIBRATION_FOLDS = 5

    @classmethod
    def make_estimator(cls) -> BaseEstimator:
        return SVC()

    @classmethod
    def accepted_params(cls) -> set[str]:
        return super().accepted_params() - {"probability"}

    def build_estimator(self, y: np.ndarray | None = None) -> BaseEstimator:
        svc = super().build_estimator(y)
        folds = self.CALIBRATION_FOLDS
        if y is not None and len(y):
            folds = int(max(2, min(folds, np.unique(y, return_counts=True)[1].min())))
        return CalibratedClassifierCV(svc, method="sigmoid", cv=folds, ensemble=False)

    def fit(self, x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
            sample_weight: np.ndarray | None = None) -> dict[str, list[float]]:
        # Calibration needs two examples of every class (one per fold); a class with a single
        # training example has it repeated, so such data still trains instead of failing.
        x, y = np.asarray(x), np.asarray(y).astype(int)
        classes, counts = np.unique(y, return_counts=True)
        lonely = np.flatnonzero(np.isin(y, classes[counts < 2]))
        if lonely.size:
            x = np.concatenate([x, x[lonely]])
            y = np.concatenate([y, y[lonely]])
            if sample_weight is not None:
                sample_weight = np.concatenate([np.asarray(sample_weight), np.asarray(sample_weight)[lonely]])
        return super().fit(x, y, x_val, y_val, sample_weight)


class GradientBoostingModel(SklearnModel):
    kind = "gradient_boosting"
    DEFAULTS = {"max_iter": 100, "learning_rate": 0.1, "max_leaf_nodes": 15, "l2_regularization": 0.0,
                "early_stopping": False, "class_weight": "balanced"}

    @classmethod
    def make_estimator(cls) -> BaseEstimator:
        return HistGradientBoostingClassifier()


class KNNModel(SklearnModel):
    kind = "knn"
    DEFAULTS = {"n_neighbors": 5, "weights": "distance", "n_jobs": 1}

    @classmethod
    def make_estimator(cls) -> BaseEstimator:
        return KNeighborsClassifier()


class MLPModel(SklearnModel):
    kind = "mlp"
    DEFAULTS = {"hidden_layer_sizes": [256, 128], "alpha": 1e-3, "learning_rate_init": 1e-3, "max_iter": 500,
                "early_stopping": True, "validation_fraction": 0.1, "n_iter_no_change": 20}

    @classmethod
    def make_estimator(cls) -> BaseEstimator:
        return MLPClassifier()

    def build_estimator(self, y: np.ndarray | None = None) -> BaseEstimator:
        est = super().build_estimator(y)
        est.set_params(hidden_layer_sizes=tuple(est.get_params()["hidden_layer_sizes"]))
        return est


class BaggingModel(SklearnModel):
    kind = "bagging"
    DEFAULTS = {"n_estimators": 50, "n_jobs": 1, "max_samples": 1.0, "max_features": 1.0}

    @classmethod
    def make_estimator(cls) -> BaseEstimator:
        return BaggingClassifier(estimator=DecisionTreeClassifier())


class AdaBoostModel(SklearnModel):
    kind = "adaboost"
    DEFAULTS = {"n_estimators": 100, "learning_rate": 0.5, "estimator__max_depth": 3}

    @classmethod
    def make_estimator(cls) -> BaseEstimator:
        return AdaBoostClassifier(estimator=DecisionTreeClassifier())


class DecisionTreeModel(SklearnModel):
    kind = "decision_tree"
    DEFAULTS = {"max_depth": None, "min_samples_leaf": 2, "class_weight": "balanced"}

    @classmethod
    def make_estimator(cls) -> BaseEstimator:
        return DecisionTreeClassifier()


class LogisticModel(SklearnModel):
    kind = "logistic"
    DEFAULTS = {"C": 1.0, "max_iter": 2000, "class_weight": "balanced"}

    @classmethod
    def make_estimator(cls) -> BaseEstimator:
        return LogisticRegression()


CLASSICAL_MODELS: dict[str, type[SklearnModel]] = {
    m.kind: m for m in (RandomForestModel, SVCModel, GradientBoostingModel, KNNModel, MLPModel, BaggingModel,
                        AdaBoostModel, DecisionTreeModel, LogisticModel)
}
