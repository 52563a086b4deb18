"""Import TensorFlow without its start-up noise, and make its training deterministic.

TensorFlow 2.21 prints the absl "log messages before InitializeLog" banner and the oneDNN notice
straight to file descriptor 2 while it imports, whatever TF_CPP_MIN_LOG_LEVEL says. We import it with
descriptor 2 pointed at a temporary file and write back every line that is not one of those two
(so a real error still shows). oneDNN stays on: turning it off would change the numbers.
"""
from __future__ import annotations

import os
import sys
import tempfile
from types import ModuleType

NOISE = ("All log messages before absl::InitializeLog() is called are written to STDERR",
         "oneDNN custom operations are on")

_deterministic = False


def _is_noise(line: str) -> bool:
    return any(n in line for n in NOISE)


def import_tensorflow() -> ModuleType:
    """`import tensorflow`, with its import-time banner dropped and absl's Python logging at ERROR."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = os.environ.get("TF_CPP_MIN_LOG_LEVEL") or "3"
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow as tf
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [ln for ln in sink.read().decode("utf-8", "replace").splitlines() if ln and not _is_noise(ln)]
    if kept:
        print("\n".join(kept), file=sys.stderr)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl ships with TensorFlow
        pass
    tf.get_logger().setLevel("ERROR")
    return tf


def make_deterministic(seed: int) -> None:
    """Seed Python, numpy and TensorFlow and switch TensorFlow to deterministic kernels.

    With one inter-op thread (see `keras_models.configure_threads`) the same data, seed and thread
    count give the same weights on every run.
    """
    tf = import_tensorflow()
    import keras

    global _deterministic
    keras.utils.set_random_seed(int(seed))
    if not _deterministic:
        tf.config.experimental.enable_op_determinism()
        _deterministic = True
