"""bench/features.py: its per-set timing covers every set of the default vector, and a bad --dir is a clear error."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ser.features import feature_config, n_pooled_features
from ser.params import load_params

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "features.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_features", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_timed_sets_add_up_to_the_default_vector(bench):
    pytest.importorskip("opensmile")
    cfg = feature_config(load_params(ROOT / "params.yaml"))
    sets = bench.feature_sets(cfg)
    names = [name for name, _ in sets]
    assert names[0] == "librosa pooled + log-mel"
    assert any(n.startswith("openSMILE") for n in names) == bool(cfg.opensmile)
    clip = (0.2 * np.sin(2 * np.pi * 180 * np.arange(16000) / 16000)).astype(np.float32)
    assert sum(np.asarray(fn(clip)).size for _, fn in sets) == n_pooled_features(cfg)


def test_pooled_only_config_times_one_set(bench):
    cfg = feature_config({"features": {"opensmile": None}})
    sets = bench.feature_sets(cfg)
    assert [name for name, _ in sets] == ["librosa pooled + log-mel"]


def test_missing_folder_is_a_clear_error(tmp_path):
    missing = tmp_path / "AudioWAV"
    done = subprocess.run([sys.executable, str(SCRIPT), "--dir", str(missing)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert f"--dir {missing}: no such folder" in done.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run([sys.executable, str(SCRIPT), "--dir", str(empty), "--files", "2"], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 2 and "no audio files" in done.stderr
