"""Speaker-adaptive normalisation at prediction time: `--group-by` per mode, the small-group fallback,
the stream's warm-up and the API's group id, all against hand-computed normalisation."""
from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pytest

from ser import EMOTIONS
from ser.audio import load_audio
from ser.speaker_norm import RunningStats, Standardizer
from ser.predict import audio_options, model_proba, predict_files, raw_features

MIN_GROUP = 3


@pytest.fixture(scope="module")
def speaker_model(tiny_features, plain_params):
    """An SVC trained with per-speaker normalisation (groups of 3+ clips use their own statistics)."""
    from ser.train import train_holdout

    features, _, manifest = tiny_features
    p = copy.deepcopy(plain_params)
    p["normalize"] = {"mode": "speaker", "min_group_size": MIN_GROUP}
    artifact, _, _ = train_holdout("svc", {"kind": "svc", "C": 10.0}, p, features, manifest)
    return artifact


@pytest.fixture(scope="module")
def folders(tiny_features, tmp_path_factory) -> tuple[list[Path], list[Path]]:
    """`big/` holds four clips of one demo speaker, `small/` two of another."""
    root = Path(tiny_features[1]["corpora"]["demo"]["root"])
    base = tmp_path_factory.mktemp("groups")
    big, small = base / "big", base / "small"
    big.mkdir(), small.mkdir()
    a = sorted((root / "spk02").rglob("*.wav"))[:4]
    b = sorted((root / "spk03").rglob("*.wav"))[:2]
    for src in a:
        shutil.copy(src, big / src.name)
    for src in b:
        shutil.copy(src, small / src.name)
    return sorted(big.glob("*.wav")), sorted(small.glob("*.wav"))


def raw_of(artifact, paths):
    sr = artifact.features.sample_rate
    return np.stack([raw_features(artifact, load_audio(p, sr, **audio_options(artifact))) for p in paths])


def probs(df):
    return df[[c for c in df.columns if c.startswith("prob_")]].to_numpy(dtype=float)


def test_folder_groups_use_their_own_statistics_and_small_ones_fall_back(speaker_model, folders):
    big, small = folders
    df = predict_files(speaker_model, [*big, *small], group_by="folder")
    assert list(df["normalised_by"]) == ["group"] * 4 + ["global"] * 2
    assert df["group"].iloc[0].endswith("big") and df["group"].iloc[-1].endswith("small")

    raw = raw_of(speaker_model, big)
    own = speaker_model.scaler.post.transform(Standardizer().fit(raw).transform(raw))
    np.testing.assert_allclose(probs(df)[:4], model_proba(speaker_model, own), atol=1e-9)

    raw_small = raw_of(speaker_model, small)
    globally = speaker_model.scaler.transform(raw_small)  # no groups: the training set's statistics
    np.testing.assert_allclose(probs(df)[4:], model_proba(speaker_model, globally), atol=1e-9)


def test_none_mode_is_global_for_every_file(speaker_model, folders):
    big, small = folders
    df = predict_files(speaker_model, [*big, *small], group_by="none")
    assert set(df["normalised_by"]) == {"global"} and df["group"].isna().all()
    np.testing.assert_allclose(probs(df), model_proba(speaker_model, speaker_model.scaler.transform(
        raw_of(speaker_model, [*big, *small]))), atol=1e-9)
    grouped = predict_files(speaker_model, [*big, *small], group_by="folder")
    assert not np.allclose(probs(df)[:4], probs(grouped)[:4])  # the group's statistics changed something


def test_a_bad_file_does_not_count_towards_its_group(speaker_model, folders, tmp_path):
    big, _ = folders
    for src in big[:3]:
        shutil.copy(src, tmp_path / src.name)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not audio")
    df = predict_files(speaker_model, [tmp_path], group_by="folder")
    ok = df[df["error"] == ""]
    assert len(ok) == 3 and set(ok["normalised_by"]) == {"group"}
    assert df.loc[df["error"] != "", "emotion"].isna().all()


def test_running_stats_equal_a_batch_fit():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(25, 6))
    stats = RunningStats()
    for part in np.array_split(x, 7):
        stats.update(part)
    ref = Standardizer().fit(x)
    assert stats.clips == 25
    np.testing.assert_allclose(stats.standardizer().mean, ref.mean, rtol=1e-12)
    np.testing.assert_allclose(stats.standardizer().scale, ref.scale, rtol=1e-12)
    seq = rng.normal(size=(5, 10, 4))  # log-mel clips: statistics per band over all frames
    np.testing.assert_allclose(RunningStats().update(seq[:2]).update(seq[2:]).standardizer().mean,
                               Standardizer().fit(seq).mean, rtol=1e-12)


def test_stream_adapts_after_the_warm_up(speaker_model, folders):
    from ser.stream import StreamPredictor

    big, _ = folders
    audio = np.concatenate([load_audio(p, 16000, normalize="none") for p in big])
    sp = StreamPredictor(speaker_model, window_s=1.0, hop_s=0.5, smoothing=0.0)
    sp.run([audio])
    events = sp.events
    assert len(events) >= MIN_GROUP + 1
    voiced = [e for e in events if not e.silent]
    assert [e.adapted for e in voiced] == [i + 1 >= MIN_GROUP for i in range(len(voiced))]
    off = StreamPredictor(speaker_model, window_s=1.0, hop_s=0.5, smoothing=0.0, adapt=False)
    off.run([audio])
    assert off.events and not any(e.adapted for e in off.events)


def test_api_group_id_normalises_once_the_group_is_big_enough(speaker_model, folders, tmp_path):
    from fastapi.testclient import TestClient

    from ser.serve import create_app

    big, _ = folders
    app = create_app(speaker_model.save(tmp_path / "model"))
    with TestClient(app) as client:
        answers = []
        for path in big:
            r = client.post("/predict", files={"file": (path.name, path.read_bytes(), "audio/wav")},
                            data={"group": "alice"})
            assert r.status_code == 200, r.text
            answers.append(r.json())
        assert [a["normalised_by"] for a in answers] == ["global"] * (MIN_GROUP - 1) + ["group"] * (5 - MIN_GROUP)
        assert all(a["group"] == "alice" for a in answers)
        # the 4th clip was normalised by the statistics of all four clips sent under "alice"
        raw = raw_of(speaker_model, big)
        expected = model_proba(speaker_model, speaker_model.scaler.post.transform(
            Standardizer().fit(raw).transform(raw[3:4])))[0]
        got = np.array([answers[3]["probabilities"][e] for e in EMOTIONS])
        np.testing.assert_allclose(got, expected, atol=1e-6)
        r = client.post("/predict", files={"file": (big[0].name, big[0].read_bytes(), "audio/wav")},
                        data={"group": "x" * 500})
        assert r.status_code == 422 and "group" in r.json()["detail"]
