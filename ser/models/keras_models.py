"""Keras 3 models: a dense net over pooled vectors and four networks over log-mel sequences.

Importing this module imports TensorFlow (~6 s); `ser.models` therefore registers these classes
lazily. Inputs arrive standardised by the caller: pooled models take (n, d), log-mel models take
(n, frames, mels) float32 and add the channel axis themselves. Each network is built on the first
`fit` from x's shape; the shape is stored in `params["input_shape"]` (and in `keras_model.json`)
so a saved model reloads without data.

Training knobs come from the shared `training` dict (`train.keras`; defaults: `ser.params.KerasParams`).
Every log-mel model also takes `spec_augment` and `mixup_alpha` in its own block (`ser.params.SequenceAugmentParams`):
SpecAugment is a layer that acts in training only, mixup a `keras.layers.MixUp` over the training batches; both
leave validation, prediction and the saved network's inference unchanged.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ser.egemaps import preload_library
from ser.log import get_logger
from ser.tfenv import import_tensorflow, make_deterministic

preload_library()  # openSMILE's library must be in the process before TensorFlow's (see there)
tf = import_tensorflow()

import keras  # noqa: E402
from keras import layers  # noqa: E402

from ser.models.base import N_CLASSES, SerModel  # noqa: E402
from ser.params import KerasParams, SequenceAugmentParams  # noqa: E402

log = get_logger(__name__)

MODEL_FILE = "model.keras"
META_FILE = "keras_model.json"

# The knobs of params.yaml `train.keras` with ser.params.KerasParams's defaults (null threads: the
# cores this process may use; null patience disables early stopping / LR reduction).
TRAINING_DEFAULTS: dict[str, Any] = KerasParams().model_dump()

OPTIMIZERS: dict[str, type[keras.optimizers.Optimizer]] = {
    "adam": keras.optimizers.Adam,
    "rmsprop": keras.optimizers.RMSprop,
    "sgd": keras.optimizers.SGD,
    "adagrad": keras.optimizers.Adagrad,
    "adadelta": keras.optimizers.Adadelta,
    "adamax": keras.optimizers.Adamax,
    "nadam": keras.optimizers.Nadam,
}

_threads_configured: int | None = None


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def configure_threads(threads: int | None = None) -> int:
    """Cap TensorFlow's thread pools (intra-op = `threads` or the available cores, inter-op = 1).

    TensorFlow accepts this only before its runtime starts; later calls keep the first setting.
    """
    global _threads_configured
    if _threads_configured is not None:
        return _threads_configured
    n = int(threads) if threads else available_cores()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # runtime already initialised by someone else
        n = tf.config.threading.get_intra_op_parallelism_threads() or n
    _threads_configured = n
    return n


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    try:
        cls = OPTIMIZERS[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown optimizer {name!r}; known: {sorted(OPTIMIZERS)}") from None
    return cls(learning_rate=float(learning_rate))


# Keras's default 0.99 needs thousands of steps for the moving statistics to settle; on a few hundred
# clips (tens of steps per epoch) inference-mode outputs stay near chance while training looks fine.
BN_MOMENTUM = 0.9

class _LrRecorder(keras.callbacks.Callback):
    """The learning rate each epoch ran with (read at epoch start, before ReduceLROnPlateau acts)."""

    def __init__(self) -> None:
        super().__init__()
        self.lrs: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self.lrs.append(float(f"{lr:.7g}"))  # float32 -> the value as written (0.001, not 0.0010000000474974513)


class EpochLog(keras.callbacks.Callback):
    """One log line per epoch (loss, accuracy, validation loss, learning rate, seconds) and, at the end,
    why training stopped: early stopping, or the epoch cap reached while validation loss still fell."""

    def __init__(self, name: str, epochs: int) -> None:
        super().__init__()
        self.name, self.epochs = name, int(epochs)
        self.val_losses: list[float] = []
        self.stop_reason = "epochs"
        self._started = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        import time

        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import time

        logs = logs or {}
        parts = [f"{self.name} epoch {epoch + 1}/{self.epochs}"]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                parts.append(f"{key} {float(logs[key]):.4f}")
        if "val_loss" in logs:
            self.val_losses.append(float(logs["val_loss"]))
            if min(self.val_losses) == self.val_losses[-1] and len(self.val_losses) > 1:
                parts.append("(best)")
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        parts.append(f"lr {lr:.3g}  {time.perf_counter() - self._started:.1f} s")
        log.info("  ".join(parts))

    def on_train_end(self, logs: dict | None = None) -> None:
        ran = len(self.val_losses)
        if not ran:
            return
        best = int(np.argmin(self.val_losses))
        if ran < self.epochs:
            self.stop_reason = "early_stopping"
            log.info(f"{self.name}: early stopping after epoch {ran}: val_loss {self.val_losses[best]:.4f} "
                     f"at epoch {best + 1} was not beaten in {ran - best - 1} epochs; restored its weights")
        elif still_falling(self.val_losses):
            self.stop_reason = "epoch_cap_still_falling"
            log.warning(f"{self.name}: stopped at the {self.epochs}-epoch cap with validation loss still falling "
                        f"(best {self.val_losses[best]:.4f} at epoch {best + 1}); raise train.keras.epochs "
                        "to let early stopping decide")
        else:
            log.info(f"{self.name}: ran all {self.epochs} epochs; best val_loss {self.val_losses[best]:.4f} "
                     f"at epoch {best + 1}")


def still_falling(val_losses: list[float], last: int = 2) -> bool:
    """True when the lowest validation loss came in the `last` epochs and improved on what came before."""
    if len(val_losses) <= last:
        return False
    return min(val_losses[-last:]) < min(val_losses[:-last])


def _pool_size(dims: tuple[int, ...], want: tuple[int, ...]) -> tuple[int, ...]:
    """Pool by `want` along each axis, but never shrink an axis below 1."""
    return tuple(w if d >= w else 1 for d, w in zip(dims, want))


AUGMENT_KEYS = frozenset(SequenceAugmentParams.model_fields)


@keras.saving.register_keras_serializable(package="ser")
class SpecAugment(layers.Layer):
    """SpecAugment (Park et al. 2019) on (batch, frames, mels): per clip, `freq_masks` bands of 0..`freq_width`
    mels and `time_masks` spans of 0..`time_width` frames are set to 0 (inputs are standardised, so 0 is the
    mean). Seeded; the identity outside training, so prediction and a reloaded model are unaffected."""

    def __init__(self, freq_masks: int = 2, freq_width: int = 8, time_masks: int = 2, time_width: int = 30,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.freq_masks, self.freq_width = int(freq_masks), int(freq_width)
        self.time_masks, self.time_width = int(time_masks), int(time_width)
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def _keep(self, batch: Any, size: int, count: int, width: int) -> Any:
        """(batch, size) 1/0: 0 inside `count` random spans of 0..width positions each."""
        keep = keras.ops.ones((batch, size))
        width = min(width, size)
        if not count or not width:
            return keep
        pos = keras.ops.arange(size, dtype="float32")[None, :]
        for _ in range(count):
            w = keras.ops.floor(keras.random.uniform((batch, 1), 0, width + 1, seed=self.generator))
            start = keras.ops.floor(keras.random.uniform((batch, 1), 0, 1, seed=self.generator) * (size - w + 1))
            inside = keras.ops.logical_and(pos >= start, pos < start + w)
            keep = keep * (1.0 - keras.ops.cast(inside, "float32"))
        return keep

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not training:
            return inputs
        batch, frames, mels = keras.ops.shape(inputs)[0], inputs.shape[1], inputs.shape[2]
        freq = self._keep(batch, mels, self.freq_masks, self.freq_width)[:, None, :]
        time = self._keep(batch, frames, self.time_masks, self.time_width)[:, :, None]
        return inputs * keras.ops.cast(freq * time, inputs.dtype)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "freq_masks": self.freq_masks, "freq_width": self.freq_width,
                "time_masks": self.time_masks, "time_width": self.time_width, "seed": self.seed}


class MixupBatches(keras.utils.PyDataset):
    """Training batches for `fit`: reshuffled each epoch, each batch mixed by `keras.layers.MixUp` (pairs within
    the batch, per-clip weight ~ Beta(alpha, alpha)); one-hot labels and sample weights mixed alike. Batch i of
    epoch e depends only on (seed, e, i), so the same seed gives the same batches."""

    def __init__(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None, batch_size: int,
                 alpha: float, seed: int):
        super().__init__()  # one worker, no multiprocessing: batches are built in order in this thread
        self.x = np.asarray(x, dtype=np.float32)
        self.y = keras.utils.to_categorical(np.asarray(y), N_CLASSES).astype(np.float32)
        self.w = (np.ones(len(self.x), np.float32) if sample_weight is None
                  else np.asarray(sample_weight, dtype=np.float32))
        self.batch_size, self.seed, self.epoch = int(batch_size), int(seed), 0
        self.mixup = layers.MixUp(alpha=float(alpha), seed=int(seed))
        self.order = self._order()

    def _order(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.x))

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        images = self.x[rows][..., None]  # MixUp takes (batch, height, width, channels)
        seed = int(np.random.default_rng([self.seed, self.epoch, index]).integers(2**31 - 1))
        t = self.mixup.get_random_transformation(images, training=True, seed=seed)
        x = keras.ops.convert_to_numpy(self.mixup.transform_images(images, t, training=True))[..., 0]
        y = keras.ops.convert_to_numpy(self.mixup.transform_labels(self.y[rows], t, training=True))
        lam = keras.ops.convert_to_numpy(t["mix_weight"]).astype(np.float32)
        w = self.w[rows]
        w = lam * w + (1.0 - lam) * w[keras.ops.convert_to_numpy(t["permutation_order"])]
        return x.astype(np.float32), y.astype(np.float32), w.astype(np.float32)

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


@keras.saving.register_keras_serializable(package="ser")
class AttentiveStatsPooling(layers.Layer):
    """(batch, time, d) -> (batch, d) attention-weighted mean (+ weighted std: 2d): a learned score per frame
    (v . tanh(W h + b)), softmax over time, so the clip's emotional frames can outweigh silence and padding."""

    def __init__(self, units: int = 64, std: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        self.units, self.std = int(units), bool(std)

    def build(self, input_shape: tuple) -> None:
        d = int(input_shape[-1])
        self.w = self.add_weight(shape=(d, self.units), initializer="glorot_uniform", name="w")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")
        self.v = self.add_weight(shape=(self.units, 1), initializer="glorot_uniform", name="v")

    def call(self, inputs: Any) -> Any:
        ops = keras.ops
        scores = ops.matmul(ops.tanh(ops.matmul(inputs, self.w) + self.b), self.v)  # (batch, time, 1)
        weights = ops.softmax(scores, axis=1)
        mean = ops.sum(weights * inputs, axis=1)
        if not self.std:
            return mean
        var = ops.sum(weights * ops.square(inputs), axis=1) - ops.square(mean)
        return ops.concatenate([mean, ops.sqrt(ops.maximum(var, 1e-6))], axis=-1)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], input_shape[-1] * (2 if self.std else 1))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "std": self.std}


class KerasModel(SerModel):
    """Shared fit / predict / save / load for every Keras network."""

    framework: ClassVar[str] = "keras"
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, params: dict[str, Any] | None = None, seed: int = 42, training: dict[str, Any] | None = None):
        super().__init__(params, seed, training)
        self.check_params(self.params)
        self.model: keras.Model | None = None
        self.classes_seen: list[int] | None = None
        self.stop_reason: str | None = None  # epochs | early_stopping | epoch_cap_still_falling, after fit
        self.epochs_run: int | None = None

    # -- hyper-parameters ---------------------------------------------------------------------
    @classmethod
    def default_params(cls) -> dict[str, Any]:
        return json.loads(json.dumps(cls.DEFAULTS))

    @classmethod
    def accepted_params(cls) -> set[str]:
        return set(cls.DEFAULTS) | {"input_shape"} | (set(AUGMENT_KEYS) if cls.input == "logmel" else set())

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        super().check_params(params)
        if cls.input == "logmel":
            try:
                SequenceAugmentParams.model_validate({k: v for k, v in params.items() if k in AUGMENT_KEYS})
            except ValueError as err:
                raise ValueError(f"{cls.kind}: bad augmentation params: {err}") from None

    def augment(self) -> SequenceAugmentParams:
        """The training-batch augmentation this model's block asks for (all off for pooled models)."""
        if self.input != "logmel":
            return SequenceAugmentParams()
        return SequenceAugmentParams.model_validate({k: v for k, v in self.params.items() if k in AUGMENT_KEYS})

    def hp(self, key: str) -> Any:
        return self.params.get(key, self.DEFAULTS[key])

    def train_cfg(self) -> dict[str, Any]:
        return {**TRAINING_DEFAULTS, **{k: v for k, v in self.training.items() if k in TRAINING_DEFAULTS}}

    # -- network ------------------------------------------------------------------------------
    def body(self, inputs: Any) -> Any:
        """Map the input tensor to the (batch, 7) softmax output (subclasses override)."""
        raise NotImplementedError

    def build(self, input_shape: tuple[int, ...]) -> keras.Model:
        make_deterministic(self.seed)
        input_shape = tuple(int(d) for d in input_shape)
        want = 1 if self.input == "pooled" else 2
        if len(input_shape) != want:
            raise ValueError(f"{self.kind} expects {self.input} input of rank {want + 1}, "
                             f"got per-example shape {input_shape}")
        inputs = keras.Input(shape=input_shape, name="features")
        masks = self.augment().spec_augment
        t = inputs if masks is None else SpecAugment(**masks.model_dump(), seed=self.seed, name="spec_augment")(inputs)
        outputs = self.body(t)
        self.params["input_shape"] = list(input_shape)
        self.model = keras.Model(inputs, outputs, name=self.kind)
        return self.model

    # -- SerModel -----------------------------------------------------------------------------
    def fit(self, x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None = None, y_val: np.ndarray | None = None,
            sample_weight: np.ndarray | None = None) -> dict[str, list[float]]:
        cfg = self.train_cfg()
        configure_threads(cfg["threads"])
        x = np.asarray(x, dtype=np.float32)
        y = np.asarray(y).astype(np.int32)
        if y.size and (y.min() < 0 or y.max() >= N_CLASSES):
            raise ValueError(f"labels must be in 0..{N_CLASSES - 1}")
        if self.model is None:
            shape = self.params.get("input_shape") or x.shape[1:]
            self.build(tuple(shape))
        else:
            make_deterministic(self.seed)
        if tuple(x.shape[1:]) != tuple(self.params["input_shape"]):
            raise ValueError(f"{self.kind} was built for {tuple(self.params['input_shape'])}, got {x.shape[1:]}")
        alpha = self.augment().mixup_alpha
        if alpha > 0:  # mixed labels are soft: categorical cross-entropy on one-hot labels
            loss, metrics = "categorical_crossentropy", [keras.metrics.CategoricalAccuracy(name="accuracy")]
        else:
            loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
        self.model.compile(optimizer=make_optimizer(cfg["optimizer"], cfg["learning_rate"]), loss=loss,
                           metrics=metrics)
        recorder = _LrRecorder()
        progress = EpochLog(self.kind, int(cfg["epochs"]))
        callbacks: list[keras.callbacks.Callback] = [recorder, progress]
        validation = None
        if x_val is not None and y_val is not None and len(y_val):
            validation = (np.asarray(x_val, dtype=np.float32), np.asarray(y_val).astype(np.int32))
            if cfg["early_stopping_patience"] is not None:
                callbacks.append(keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=int(cfg["early_stopping_patience"]), restore_best_weights=True))
            if cfg["reduce_lr_patience"] is not None:
                callbacks.append(keras.callbacks.ReduceLROnPlateau(
                    monitor="val_loss", factor=float(cfg["reduce_lr_factor"]),
                    patience=int(cfg["reduce_lr_patience"]), min_lr=float(cfg["min_lr"])))
        weights = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float32)
        if alpha > 0:
            if validation is not None:
                validation = (validation[0], keras.utils.to_categorical(validation[1], N_CLASSES))
            batches = MixupBatches(x, y, weights, int(cfg["batch_size"]), alpha, self.seed)
            hist = self.model.fit(batches, epochs=int(cfg["epochs"]), validation_data=validation,
                                  callbacks=callbacks, verbose=int(cfg["verbose"]))
        else:
            hist = self.model.fit(
                x, y, batch_size=int(cfg["batch_size"]), epochs=int(cfg["epochs"]), validation_data=validation,
                sample_weight=weights, shuffle=True, callbacks=callbacks, verbose=int(cfg["verbose"]))
        self.classes_seen = sorted(int(c) for c in np.unique(y))
        self.stop_reason = progress.stop_reason
        self.epochs_run = len(hist.history.get("loss", []))
        history = {k: [float(v) for v in vals] for k, vals in hist.history.items() if k != "learning_rate"}
        history["lr"] = recorder.lrs[: len(history.get("loss", recorder.lrs))]
        return history

    def stopping(self) -> dict[str, Any]:
        if self.stop_reason is None:  # loaded, not fitted: the artefact does not say
            return {}
        return {"epochs_run": self.epochs_run, "stop_reason": self.stop_reason}

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise RuntimeError(f"{self.kind}: predict_proba before fit/load")
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 0:
            return np.zeros((0, N_CLASSES))
        batch = max(int(self.train_cfg()["batch_size"]), 256)
        proba = np.asarray(self.model.predict(x, batch_size=batch, verbose=0), dtype=np.float64)
        if self.classes_seen is not None and len(self.classes_seen) < N_CLASSES:
            mask = np.zeros(N_CLASSES, dtype=bool)
            mask[self.classes_seen] = True
            proba[:, ~mask] = 0.0
            total = proba.sum(axis=1, keepdims=True)
            proba = np.divide(proba, total, out=np.full_like(proba, 0.0), where=total > 0)
        return proba

    def save(self, folder: Path) -> list[Path]:
        if self.model is None:
            raise RuntimeError(f"{self.kind}: save before fit")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        model_path, meta_path = folder / MODEL_FILE, folder / META_FILE
        self.model.save(model_path)
        meta = {"kind": self.kind, "input": self.input, "input_shape": self.params["input_shape"],
                "params": self.params, "seed": self.seed, "classes_seen": self.classes_seen}
        meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return [model_path, meta_path]

    @classmethod
    def load(cls, folder: Path, params: dict[str, Any] | None = None) -> KerasModel:
        folder = Path(folder)
        meta = json.loads((folder / META_FILE).read_text())
        if meta.get("kind") != cls.kind:
            raise ValueError(f"{folder} holds a {meta.get('kind')!r} model, not {cls.kind!r}")
        merged = dict(params if params is not None else meta["params"])
        merged["input_shape"] = meta["input_shape"]
        model = cls(merged, seed=meta["seed"])
        configure_threads()
        # safe_mode refuses Lambda layers and other deserialised code: a .keras file is data only
        model.model = keras.models.load_model(folder / MODEL_FILE, compile=False, safe_mode=True)
        model.classes_seen = meta.get("classes_seen")
        return model

    # -- shared building blocks ---------------------------------------------------------------
    def conv2d_block(self, t: Any, filters: int, kernel: int, pool: tuple[int, int], dropout: float,
                     name: str, regularizer: Any = None) -> Any:
        t = layers.Conv2D(filters, kernel, padding="same", use_bias=False, kernel_regularizer=regularizer,
                          name=f"{name}_conv")(t)
        t = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(t)
        t = layers.Activation("relu", name=f"{name}_relu")(t)
        pool = _pool_size(tuple(t.shape[1:3]), pool)
        if pool != (1, 1):
            t = layers.MaxPooling2D(pool, name=f"{name}_pool")(t)
        if dropout:
            t = layers.Dropout(dropout, name=f"{name}_drop")(t)
        return t

    def head(self, t: Any, dense_units: int, dropout: float, regularizer: Any = None) -> Any:
        if dense_units:
            t = layers.Dense(int(dense_units), activation="relu", kernel_regularizer=regularizer, name="dense")(t)
            if dropout:
                t = layers.Dropout(dropout, name="dense_drop")(t)
        return layers.Dense(N_CLASSES, activation="softmax", kernel_regularizer=regularizer, name="emotion")(t)

    def image(self, t: Any) -> Any:
        """(batch, frames, mels) -> (batch, frames, mels, 1), average-pooled by `input_pool` [time, freq]."""
        frames, mels = t.shape[1], t.shape[2]
        t = layers.Reshape((frames, mels, 1), name="add_channel")(t)
        want = tuple(int(p) for p in (self.hp("input_pool") or [1, 1]))
        pool = _pool_size((frames, mels), want)
        if pool != (1, 1):
            t = layers.AveragePooling2D(pool, name="input_pool")(t)
        return t

    @staticmethod
    def to_sequence(t: Any, name: str) -> Any:
        """(batch, time, freq, ch) -> (batch, time, freq * ch)."""
        return layers.Reshape((t.shape[1], t.shape[2] * t.shape[3]), name=name)(t)


class KerasMLP(KerasModel):
    kind = "keras_mlp"
    input = "pooled"
    DEFAULTS = {"units": [256, 128], "dropout": 0.3, "batchnorm": True}

    def body(self, inputs: Any) -> Any:
        t = inputs
        for i, units in enumerate(self.hp("units")):
            t = layers.Dense(int(units), use_bias=not self.hp("batchnorm"), name=f"dense{i}")(t)
            if self.hp("batchnorm"):
                t = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{i}")(t)
            t = layers.Activation("relu", name=f"relu{i}")(t)
            if self.hp("dropout"):
                t = layers.Dropout(float(self.hp("dropout")), name=f"drop{i}")(t)
        return layers.Dense(N_CLASSES, activation="softmax", name="emotion")(t)


class CNN1D(KerasModel):
    """Conv1D over time with the mel bands as channels."""

    kind = "cnn1d"
    input = "logmel"
    DEFAULTS = {"filters": [64, 128], "kernel_size": 5, "pool": 2, "dropout": 0.3, "batchnorm": True,
                "dense_units": 64}

    def body(self, inputs: Any) -> Any:
        t = inputs
        bn = self.hp("batchnorm")
        for i, filters in enumerate(self.hp("filters")):
            t = layers.Conv1D(int(filters), int(self.hp("kernel_size")), padding="same", use_bias=not bn,
                              name=f"block{i}_conv")(t)
            if bn:
                t = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"block{i}_bn")(t)
            t = layers.Activation("relu", name=f"block{i}_relu")(t)
            (pool,) = _pool_size((t.shape[1],), (int(self.hp("pool")),))
            if pool > 1:
                t = layers.MaxPooling1D(pool, name=f"block{i}_pool")(t)
            if self.hp("dropout"):
                t = layers.Dropout(float(self.hp("dropout")), name=f"block{i}_drop")(t)
        t = layers.GlobalAveragePooling1D(name="gap")(t)
        return self.head(t, self.hp("dense_units"), float(self.hp("dropout")))


class CNN2D(KerasModel):
    """Conv2D blocks over the (frames, mels, 1) image, global average pooling, dense head."""

    kind = "cnn2d"
    input = "logmel"
    DEFAULTS = {"filters": [16, 32, 64], "kernel_size": 3, "pool": 2, "input_pool": [2, 1], "dropout": 0.25,
                "dense_units": 64}

    def body(self, inputs: Any) -> Any:
        t = self.image(inputs)
        p = int(self.hp("pool"))
        for i, filters in enumerate(self.hp("filters")):
            t = self.conv2d_block(t, int(filters), int(self.hp("kernel_size")), (p, p), float(self.hp("dropout")),
                                  name=f"block{i}")
        t = layers.GlobalAveragePooling2D(name="gap")(t)
        return self.head(t, self.hp("dense_units"), float(self.hp("dropout")))


class CNNLSTM(KerasModel):
    """Conv2D blocks (pooling along frequency, or both axes) then LSTM layers over time."""

    kind = "cnn_lstm"
    input = "logmel"
    DEFAULTS = {"filters": [16, 32], "kernel_size": 3, "pool_time": True, "input_pool": [2, 1],
                "lstm_units": [64], "dropout": 0.3, "dense_units": 0}

    def body(self, inputs: Any) -> Any:
        t = self.image(inputs)
        tp = 2 if self.hp("pool_time") else 1
        drop = float(self.hp("dropout"))
        for i, filters in enumerate(self.hp("filters")):
            t = self.conv2d_block(t, int(filters), int(self.hp("kernel_size")), (tp, 2), drop, name=f"block{i}")
        t = self.to_sequence(t, "to_sequence")
        units = list(self.hp("lstm_units"))
        for i, u in enumerate(units):
            t = layers.LSTM(int(u), return_sequences=i < len(units) - 1, name=f"lstm{i}")(t)
            if drop:
                t = layers.Dropout(drop, name=f"lstm{i}_drop")(t)
        return self.head(t, self.hp("dense_units"), drop)


class DualCNNLSTM(KerasModel):
    """Two parallel Conv2D branches of different depth on the same log-mel input, each turned into a
    time sequence, concatenated along features, then two L2-regularised LSTM layers and a softmax.

    Both branches halve time in their first `time_pools` blocks only (the deeper branch's extra blocks
    pool frequency alone), so the two sequences have the same length and concatenate cleanly.
    """

    kind = "dual_cnn_lstm"
    input = "logmel"
    DEFAULTS = {"branch_a_filters": [16, 32], "branch_b_filters": [16, 32, 48], "kernel_size_a": 3,
                "kernel_size_b": 3, "time_pools": 2, "input_pool": [2, 1], "lstm_units": [64, 32], "l2": 1e-4,
                "dropout": 0.3}

    def body(self, inputs: Any) -> Any:
        a_filters, b_filters = list(self.hp("branch_a_filters")), list(self.hp("branch_b_filters"))
        time_pools = int(self.hp("time_pools"))
        if len(a_filters) == len(b_filters):
            raise ValueError("dual_cnn_lstm: the two branches must differ in depth")
        if time_pools > min(len(a_filters), len(b_filters)):
            raise ValueError("dual_cnn_lstm: time_pools exceeds the shallower branch's depth")
        units = list(self.hp("lstm_units"))
        if len(units) != 2:
            raise ValueError("dual_cnn_lstm: lstm_units must list exactly two LSTM layers")
        reg = keras.regularizers.L2(float(self.hp("l2"))) if self.hp("l2") else None
        drop = float(self.hp("dropout"))
        image = self.image(inputs)
        branches = []
        for name, filters, kernel in (("a", a_filters, self.hp("kernel_size_a")),
                                      ("b", b_filters, self.hp("kernel_size_b"))):
            t = image
            for i, f in enumerate(filters):
                pool = (2 if i < time_pools else 1, 2)
                t = self.conv2d_block(t, int(f), int(kernel), pool, drop, name=f"{name}{i}", regularizer=reg)
            branches.append(self.to_sequence(t, f"{name}_sequence"))
        if branches[0].shape[1] != branches[1].shape[1]:  # pragma: no cover - guarded by construction
            raise ValueError("dual_cnn_lstm: branch sequence lengths differ")
        t = layers.Concatenate(axis=-1, name="concat")(branches)
        t = layers.LSTM(int(units[0]), return_sequences=True, kernel_regularizer=reg, name="lstm0")(t)
        t = layers.Dropout(drop, name="lstm0_drop")(t)
        t = layers.LSTM(int(units[1]), kernel_regularizer=reg, name="lstm1")(t)
        t = layers.Dropout(drop, name="lstm1_drop")(t)
        return layers.Dense(N_CLASSES, activation="softmax", kernel_regularizer=reg, name="emotion")(t)


class CNNAttention(KerasModel):
    """A small Conv2D front end (halving time in its first `time_pools` blocks, frequency in every block), each
    frame's features projected to `proj_units`, then attentive statistics pooling over time (learned frame
    weights; weighted mean and, with `std_pooling`, weighted std) and a dense softmax head."""

    kind = "cnn_attention"
    input = "logmel"
    DEFAULTS = {"filters": [16, 32, 64], "kernel_size": 3, "time_pools": 2, "input_pool": [2, 1], "proj_units": 128,
                "attention_units": 64, "std_pooling": True, "dropout": 0.0, "dense_units": 64}

    def body(self, inputs: Any) -> Any:
        drop = float(self.hp("dropout"))
        time_pools = int(self.hp("time_pools"))
        t = self.image(inputs)
        for i, filters in enumerate(self.hp("filters")):
            pool = (2 if i < time_pools else 1, 2)
            t = self.conv2d_block(t, int(filters), int(self.hp("kernel_size")), pool, drop, name=f"block{i}")
        t = self.to_sequence(t, "to_sequence")
        if self.hp("proj_units"):
            t = layers.Dense(int(self.hp("proj_units")), activation="relu", name="frame_proj")(t)
        t = AttentiveStatsPooling(int(self.hp("attention_units")), bool(self.hp("std_pooling")), name="attention_pool")(t)
        if drop:
            t = layers.Dropout(drop, name="pool_drop")(t)
        return self.head(t, self.hp("dense_units"), drop)


KERAS_MODELS: dict[str, type[KerasModel]] = {m.kind: m for m in (KerasMLP, CNN1D, CNN2D, CNNLSTM, DualCNNLSTM,
                                                                  CNNAttention)}
