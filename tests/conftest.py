"""Shared fixtures: the real corpora in ../shared/corpora, and a writer of short WAV files."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf


@pytest.fixture(scope="session")
def shared_corpora() -> Path:
    """`../shared/corpora` next to the repository (or `$SER_SHARED_CORPORA`, for a checkout elsewhere);
    skips the test when it is absent."""
    import os

    path = Path(os.environ.get("SER_SHARED_CORPORA") or Path(__file__).resolve().parents[1].parent / "shared" / "corpora")
    if not path.is_dir():
        pytest.skip("../shared/corpora not present")
    return path


@pytest.fixture(scope="session")
def shared_manifest(shared_corpora) -> pd.DataFrame:
    """`MANIFEST.tsv` of the shared corpora (one row per file: path, sha256, sample_rate, channels, ...),
    with `corpus` (the top folder) and `name` (the file name) added: expected counts come from here."""
    table = pd.read_csv(shared_corpora / "MANIFEST.tsv", sep="\t", dtype={"path": str})
    return table.assign(corpus=table["path"].str.split("/").str[0], name=table["path"].str.split("/").str[-1])


@pytest.fixture
def write_wav() -> Callable[..., Path]:
    """`write_wav(path, seconds=0.3, sr=16000, channels=1)` writes a 16-bit PCM tone, creating parents."""

    def write(path: Path | str, seconds: float = 0.3, sr: int = 16000, channels: int = 1) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(round(seconds * sr))) / sr
        tone = 0.1 * np.sin(2 * np.pi * 220.0 * t)
        data = np.repeat(tone[:, None], channels, axis=1) if channels > 1 else tone
        sf.write(path, data, sr, subtype="PCM_16", format="WAV")
        return path

    return write


@pytest.fixture(scope="session")
def tiny_features(tmp_path_factory):
    """A small demo corpus taken through ingest, split and feature extraction: (features dir, params, manifest)."""
    import yaml

    from ser.demo import write_demo_corpus
    from ser.feature_table import FeatureSettings, plan_chunks, run_chunk
    from ser.ingest import ingest_corpus
    from ser.split import build_manifest

    base = tmp_path_factory.mktemp("tiny")
    root = base / "demo"
    write_demo_corpus(root, speakers=8, utterances_per_emotion=2, seed=4)
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    params["corpora"] = {"demo": {"format": "folder", "root": str(root)}}
    params["augment"]["copies"] = 1
    params["features"]["logmel_frames"] = 60
    params["train"]["keras"].update(epochs=3, early_stopping_patience=2)
    manifest, _ = build_manifest([ingest_corpus(root, "folder", params["labels"]["folder"], name="demo").manifest],
                                 protocol="speaker", ratios={"train": 0.5, "val": 0.25, "test": 0.25}, seed=1)
    settings = FeatureSettings.from_params(params)
    for chunk in plan_chunks(manifest, settings, 100):
        run_chunk(chunk, manifest, {"demo": root}, settings, base / "features")
    return base / "features", params, manifest


@pytest.fixture(scope="session")
def clips(tiny_features) -> list[Path]:
    """Real demo-corpus clips of one speaker (spk01 of tiny_features), every emotion."""
    root = Path(tiny_features[1]["corpora"]["demo"]["root"])
    return sorted((root / "spk01").rglob("*.wav"))


@pytest.fixture(scope="session")
def long_clip(clips, tmp_path_factory) -> Path:
    """Six of those clips back to back: longer than the 3-s window (also the fake microphone's input)."""
    audio = np.concatenate([sf.read(p, dtype="float32")[0] for p in clips[:6]])
    path = tmp_path_factory.mktemp("long") / "spk01_six_clips.wav"
    sf.write(path, audio, 16000, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def plain_params(tiny_features) -> dict:
    """tiny_features' params without openSMILE fusion: for tests of the prediction plumbing, not of the
    feature set (the fused columns are extra columns of the same table); copy before changing it."""
    import copy

    p = copy.deepcopy(tiny_features[1])
    p["features"]["opensmile"] = None
    return p


@pytest.fixture(scope="session")
def svc_model(tiny_features, plain_params, tmp_path_factory):
    """An SVC trained once on the tiny demo features: (artifact, its saved folder)."""
    from ser.train import train_holdout

    artifact, _, _ = train_holdout("svc", {"kind": "svc", "C": 10.0}, plain_params, tiny_features[0], tiny_features[2])
    return artifact, artifact.save(tmp_path_factory.mktemp("models") / "svc")


@pytest.fixture(scope="session")
def demo_inputs():
    """A factory: `make(base, utterances_per_emotion, seed)` writes an 8-speaker demo corpus under
    `base/demo`, ingests and splits it (half train, a quarter val, a quarter test), writes
    `base/manifest.parquet`; returns (corpus root, manifest path, params pointing at it, manifest)."""
    import yaml

    from ser.demo import write_demo_corpus
    from ser.ingest import ingest_corpus
    from ser.split import build_manifest

    def make(base: Path, utterances_per_emotion: int = 1, seed: int = 2):
        root = base / "demo"
        write_demo_corpus(root, speakers=8, utterances_per_emotion=utterances_per_emotion, seed=seed)
        params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
        params["corpora"] = {"demo": {"format": "folder", "root": str(root)}}
        ingested = ingest_corpus(root, "folder", params["labels"]["folder"], name="demo")
        manifest, _ = build_manifest([ingested.manifest], protocol="speaker",
                                     ratios={"train": 0.5, "val": 0.25, "test": 0.25}, seed=0)
        path = base / "manifest.parquet"
        manifest.to_parquet(path)
        return root, path, params, manifest

    return make


@pytest.fixture(scope="session")
def run_outputs(tmp_path_factory) -> Path:
    """A repository root with the committed pipeline outputs (metrics/, reports/, plots/, params.yaml) and the
    manifest they came from (params.yaml's demo corpus, ingested and split as `ser manifest` does), plus one
    quarantined file per stage: the run report's real inputs."""
    import shutil

    import pandas as pd
    import yaml

    from ser.demo import write_demo_corpus
    from ser.ingest import ingest_corpus
    from ser.split import build_manifest

    repo = Path(__file__).resolve().parents[1]
    root = tmp_path_factory.mktemp("run")
    for name in ("metrics", "reports", "plots"):
        shutil.copytree(repo / name, root / name, ignore=shutil.ignore_patterns("index.html"))
    shutil.copy(repo / "params.yaml", root / "params.yaml")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    demo, split = params["demo"], params["split"]
    corpus = root / "data" / "raw" / "demo"
    write_demo_corpus(corpus, speakers=demo["speakers"], utterances_per_emotion=demo["utterances_per_emotion"],
                      seed=demo["seed"])
    ingested = ingest_corpus(corpus, "folder", params["labels"]["folder"], name="demo")
    manifest, _ = build_manifest([ingested.manifest], protocol=split["protocol"], ratios=split["ratios"],
                                 test_corpora=split["test_corpora"], seed=params["seed"],
                                 dedupe=split["drop_duplicates"])
    interim = root / "data" / "interim"
    interim.mkdir(parents=True)
    manifest.to_parquet(interim / "manifest.parquet")
    pd.DataFrame([{"corpus": "demo", "path": "spk13/bored/spk13_bored_01.wav", "kind": "label",
                   "reason": "label 'bored' maps to no emotion"}]).to_parquet(interim / "manifest.quarantine.parquet")
    (root / "data" / "features" / "quarantine").mkdir(parents=True)
    pd.DataFrame([{"corpus": "demo", "path": "spk03/sad/spk03_sad_01.wav", "kind": "audio",
                   "reason": "0.050 s of audio after trimming is under 0.1 s"}]).to_parquet(
        root / "data" / "features" / "quarantine" / "demo.parquet")
    return root
