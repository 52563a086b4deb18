"""Export a Keras model artefact to a TensorFlow SavedModel or a TFLite flat buffer, with a parity check.

The exported network takes the RAW features (`ser.features`: the pooled vector, or the log-mel
sequence) and has the artefact's scaler folded in as its first layer: the fitted affine map of
`GroupNormalizer` without groups (training statistics, what `ser predict` applies), so a consumer
needs only the feature extraction and this file. Its output is the seven probabilities in
`ser.EMOTIONS` order. An ``<out>.json`` sidecar (for SavedModel: ``<out>/ser_export.json``) records
the labels, the input shape, the feature params and their hash, and the audio settings.

Keras 3 path: ``model.export(dir, format="tf_saved_model")`` writes the SavedModel (serving
endpoint ``serve``); the TFLite file is converted from that SavedModel with
``tf.lite.TFLiteConverter.from_saved_model`` (TF Select ops are allowed as a fallback for layers the
builtin op set lacks, e.g. some LSTMs). Parity: the exported model and the artefact's own path
(scaler + Keras model) are run on the same inputs and the largest absolute difference of the
probabilities must stay within `tolerance` (default 1e-4); otherwise nothing is written.

sklearn models are refused: they have no TF graph to export.

A model trained on features with a pretrained encoder (`features.encoder`: Whisper through
CTranslate2) is exported as its head only: TFLite and SavedModel cannot hold the CTranslate2
encoder, and the head with the scaler folded in is what a consumer needs once it can compute the
fused vector. The sidecar then says so (`head_only`, `input_note`), lists the input's columns in
order (`input_columns`: pooled statistics, eGeMAPS functionals, `enc_mean_*`/`enc_std_*`) and gives
the encoder config (`encoder`, with its `signature`) the columns must be computed with.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ser import EMOTIONS
from ser.artifact import Artifact, load_artifact
from ser.io import replace_path, write_json

FORMATS = ("savedmodel", "tflite")
SIDECAR = "ser_export.json"


class ExportError(ValueError):
    """The artefact cannot be exported (not Keras) or the export failed its parity check."""


@dataclass
class ExportResult:
    path: Path
    format: str
    max_abs_diff: float
    n_inputs: int
    tolerance: float
    size_bytes: int
    note: str | None = None  # set for a head-only export (an encoder model): what its input is

    @property
    def ok(self) -> bool:
        return self.max_abs_diff <= self.tolerance


def folded_scaler(artifact: Artifact) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) with (x - mean) / std == the artefact's group-less scaler transform."""
    s = artifact.scaler
    m1, s1 = np.asarray(s.fallback.mean, np.float64), np.asarray(s.fallback.scale, np.float64)
    m2, s2 = np.asarray(s.post.mean, np.float64), np.asarray(s.post.scale, np.float64)
    # ((x - m1) / s1 - m2) / s2 == (x - (m1 + m2 * s1)) / (s1 * s2)
    return m1 + m2 * s1, s1 * s2


def input_shape(artifact: Artifact) -> tuple[int, ...]:
    shape = artifact.model.params.get("input_shape")
    if shape:
        return tuple(int(d) for d in shape)
    return tuple(int(d) for d in artifact.model.model.input_shape[1:])


def wrapped_model(artifact: Artifact) -> Any:
    """A Keras model: raw features -> folded scaler -> the artefact's network -> 7 probabilities."""
    import keras

    mean, std = folded_scaler(artifact)
    inputs = keras.Input(shape=input_shape(artifact), name="features", dtype="float32")
    norm = keras.layers.Normalization(mean=mean.astype(np.float32), variance=np.square(std).astype(np.float32),
                                      axis=-1, name="scaler")
    outputs = artifact.model.model(norm(inputs))
    return keras.Model(inputs, outputs, name=f"ser_{artifact.model.kind}")


def parity_inputs(artifact: Artifact, n: int = 8, seed: int = 0) -> np.ndarray:
    """`n` raw feature inputs drawn around the training distribution (mean + std * N(0, 1))."""
    rng = np.random.default_rng(seed)
    mean = np.asarray(artifact.scaler.fallback.mean, np.float64)
    std = np.asarray(artifact.scaler.fallback.scale, np.float64)
    x = mean + std * rng.standard_normal((n, *input_shape(artifact)))
    return x.astype(np.float32)


def reference_proba(artifact: Artifact, x: np.ndarray) -> np.ndarray:
    """The artefact's own prediction path (scaler in numpy, then the Keras model), before any class mask."""
    scaled = artifact.scaler.transform(x)
    return np.asarray(artifact.model.model.predict(scaled, verbose=0), dtype=np.float64)


def tflite_interpreter(model_bytes: bytes) -> Any:
    """LiteRT's interpreter when `ai-edge-litert` is installed, else TensorFlow's (deprecated, still shipped)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import warnings

        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_content=model_bytes)
    return Interpreter(model_content=model_bytes)


def _tflite_run(model_bytes: bytes, x: np.ndarray) -> np.ndarray:
    interpreter = tflite_interpreter(model_bytes)
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    rows = []
    for row in x:  # batch 1: the converted signature has a fixed batch of 1 or a dynamic one
        interpreter.resize_tensor_input(inp["index"], [1, *row.shape])
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], row[None].astype(np.float32))
        interpreter.invoke()
        rows.append(np.asarray(interpreter.get_tensor(out["index"]))[0])
    return np.asarray(rows, dtype=np.float64)


def _savedmodel_run(path: Path, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    fn = loaded.signatures["serving_default"]
    out = fn(tf.constant(x, dtype=tf.float32))
    return np.asarray(next(iter(out.values())), dtype=np.float64)


def head_only_note(artifact: Artifact) -> str | None:
    """For a model on encoder features: what the exported head takes as input; None for other models."""
    cfg = artifact.features
    if artifact.input != "pooled" or getattr(cfg, "encoder", None) is None:
        return None
    parts = ["pooled librosa statistics"] + (["eGeMAPS functionals"] if cfg.opensmile else []) + [
        f"the {cfg.encoder.name} encoder's pooled frames (enc_mean_*, enc_std_*)"]
    return ("head only: the Whisper encoder runs in CTranslate2, which TFLite/SavedModel cannot hold; the input is the "
            f"fused feature vector ({', '.join(parts)}, in input_columns order, as ser.features.extract_pooled_vector "
            "computes it with the encoder config in `encoder`), raw: the scaler is folded in")


def input_columns(artifact: Artifact) -> list[str] | None:
    """The names of the exported model's input values, in order, for a pooled model; None for log-mel input."""
    if artifact.input != "pooled":
        return None
    from ser.features import pooled_feature_names

    return pooled_feature_names(artifact.features)


def _sidecar(artifact: Artifact, fmt: str, max_diff: float, n: int) -> dict[str, Any]:
    note = head_only_note(artifact)
    encoder = artifact.features.encoder
    extra = {"head_only": note is not None, "input_note": note, "input_columns": input_columns(artifact),
             "encoder": None if encoder is None else {**encoder.to_dict(), "signature": encoder.signature()}}
    return {**extra, "format": fmt, "model": artifact.name, "kind": artifact.model.kind, "input": artifact.input,
            "input_shape": list(input_shape(artifact)), "input_dtype": "float32", "scaler_included": True,
            "labels": list(EMOTIONS), "feature_params": artifact.features.to_dict(),
            "feature_hash": artifact.features.config_hash(), "audio": artifact.audio,
            "classes_seen": getattr(artifact.model, "classes_seen", None),
            "parity": {"max_abs_diff": max_diff, "inputs": n}}


def export_artifact(model_dir: Path | str, out: Path | str, fmt: str, tolerance: float = 1e-4,
                    n_inputs: int = 8, artifact: Artifact | None = None) -> ExportResult:
    """Export the Keras model of the artefact in `model_dir` to `out` (`fmt`: savedmodel | tflite).

    Writes only when the parity check passes (ExportError otherwise); `out` is replaced atomically.
    """
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if artifact is None:
        from ser.artifact import read_meta

        meta = read_meta(model_dir)  # refuse sklearn before loading (and importing TensorFlow)
        _require_keras(str(meta.get("name")), str(meta.get("kind")), str(meta.get("framework")))
        artifact = load_artifact(model_dir)
    _require_keras(artifact.name, artifact.model.kind, artifact.model.framework)
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    x = parity_inputs(artifact, n_inputs)
    expected = reference_proba(artifact, x)
    model = wrapped_model(artifact)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        saved = work / "savedmodel"
        model.export(str(saved), format="tf_saved_model", verbose=False)
        how = "dynamic batch"
        if fmt == "savedmodel":
            got = _savedmodel_run(saved, x)
            produced = saved
        else:
            flat, how = _convert_tflite(model, saved, work, input_shape(artifact))
            produced = work / "model.tflite"
            produced.write_bytes(flat)
            try:
                got = _tflite_run(flat, x)
            except (RuntimeError, ValueError) as exc:  # e.g. TF Select ops the interpreter cannot run
                raise ExportError(f"the TFLite model ({how}) does not run here: {str(exc).splitlines()[0]}") from exc
        diff = float(np.max(np.abs(got - expected))) if got.shape == expected.shape else float("inf")
        result = ExportResult(path=out, format=fmt, max_abs_diff=diff, n_inputs=len(x), tolerance=tolerance,
                              size_bytes=_size(produced), note=head_only_note(artifact))
        if not result.ok:
            raise ExportError(f"parity check failed: exported {fmt} differs from the Keras model by up to "
                              f"{diff:.3g} (tolerance {tolerance:g}) on {len(x)} inputs; nothing written")
        meta = {**_sidecar(artifact, fmt, diff, len(x)), "conversion": how,
                "batch_size": 1 if how.startswith("batch 1") else None}
        if fmt == "savedmodel":
            (produced / SIDECAR).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
        replace_path(produced, out)
        if fmt == "tflite":
            write_json(meta, out.with_name(out.name + ".json"))
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _convert_tflite(model: Any, saved: Path, work: Path, shape: tuple[int, ...]) -> tuple[bytes, str]:
    """TFLite bytes and how they were made; tries, in order: the SavedModel as exported (dynamic batch) with
    builtin ops; a batch-1 signature with builtin ops (recurrent layers such as LSTMs lower to fused builtin
    kernels only with static shapes); batch 1 with TF Select ops allowed (needs the Flex delegate to run)."""
    import tensorflow as tf

    import keras

    fixed = work / "savedmodel_batch1"
    errors = []
    order = ["dynamic batch, builtin ops", "batch 1, builtin ops", "batch 1, builtin + TF Select ops"]
    if any(isinstance(layer, keras.layers.RNN) for layer in model._flatten_layers()):
        order = order[1:]  # recurrent layers never lower with a dynamic batch: skip the noisy failed attempt
    for how in order:
        try:
            if how.startswith("batch 1") and not fixed.exists():
                model.export(str(fixed), format="tf_saved_model", verbose=False,
                             input_signature=[tf.TensorSpec([1, *shape], tf.float32, name="features")])
            converter = tf.lite.TFLiteConverter.from_saved_model(str(saved if how.startswith("dynamic") else fixed))
            if "Select" in how:
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
            return converter.convert(), how
        except Exception as exc:  # converter errors are plain Exceptions with MLIR diagnostics
            errors.append(f"{how}: {str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else type(exc).__name__}")
    raise ExportError("TFLite conversion failed: " + "; ".join(errors))


def _require_keras(name: str, kind: str, framework: str) -> None:
    if framework != "keras":
        raise ExportError(f"{name} is a {kind!r} ({framework}) model: only Keras models can be exported to "
                          "SavedModel/TFLite (sklearn models have no TF graph); serve it with `ser serve` instead")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


