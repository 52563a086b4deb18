"""The synthetic demo corpus: layout, determinism, audio sanity, and emotion/speaker cues that exist."""
from __future__ import annotations

import hashlib
from pathlib import Path

import librosa
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

import ser.demo as demo
from ser import EMOTIONS
from ser.demo import write_demo_corpus

SPEAKERS = 8
UTTERANCES = 3
SR = 16000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    out = tmp_path_factory.mktemp("demo") / "corpus"
    df = write_demo_corpus(out, speakers=SPEAKERS, utterances_per_emotion=UTTERANCES, sample_rate=SR, seed=7)
    return out, df


@pytest.fixture(scope="module")
def features(corpus: tuple[Path, pd.DataFrame]) -> pd.DataFrame:
    """Per file: median F0 (yin over loud frames), RMS, mean MFCCs."""
    out, df = corpus
    rows = []
    for rec in df.itertuples():
        audio, sr = sf.read(out / rec.path)
        f0 = librosa.yin(audio, fmin=60, fmax=600, sr=sr, frame_length=1024, hop_length=256)
        rms = librosa.feature.rms(y=audio, frame_length=1024, hop_length=256)[0]
        n = min(len(f0), len(rms))
        loud = rms[:n] > 0.3 * rms.max()
        mfcc = librosa.feature.mfcc(y=audio, sr=sr, n_mfcc=20).mean(axis=1)
        rows.append({"speaker": rec.speaker, "gender": rec.gender, "emotion": rec.emotion,
                     "f0": float(np.median(f0[:n][loud])), "rms": float(np.sqrt(np.mean(audio**2))),
                     **{f"mfcc{i}": v for i, v in enumerate(mfcc)}})
    return pd.DataFrame(rows)


def _digest(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _wav_digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): _digest(p) for p in sorted(root.rglob("*.wav"))}


def test_layout_and_rows(corpus):
    out, df = corpus
    assert list(df.columns) == ["path", "speaker", "gender", "emotion"]
    assert len(df) == SPEAKERS * len(EMOTIONS) * UTTERANCES
    wavs = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.wav"))
    assert wavs == sorted(df["path"])
    speakers = [f"spk{i:02d}" for i in range(1, SPEAKERS + 1)]
    assert sorted(df["speaker"].unique()) == speakers
    for rec in df.itertuples():
        spk, emo, name = rec.path.split("/")
        assert (spk, emo) == (rec.speaker, rec.emotion)
        assert name.startswith(f"{spk}_{emo}_") and name.endswith(".wav")
        assert 1 <= int(name[len(spk) + len(emo) + 2 : -4]) <= UTTERANCES
    counts = df.groupby(["speaker", "emotion"]).size()
    assert len(counts) == SPEAKERS * len(EMOTIONS) and (counts == UTTERANCES).all()
    assert set(df["emotion"]) == set(EMOTIONS)
    # Nothing left beside the corpus: no temp folders.
    assert [p.name for p in out.parent.iterdir()] == [out.name]


def test_speakers_csv(corpus):
    out, df = corpus
    speakers = pd.read_csv(out / "speakers.csv")
    assert list(speakers.columns) == ["speaker", "gender", "language"]
    assert list(speakers["speaker"]) == [f"spk{i:02d}" for i in range(1, SPEAKERS + 1)]
    assert (speakers["language"] == "en").all()
    assert set(speakers["gender"]) == {"male", "female"}
    assert abs((speakers["gender"] == "male").sum() - (speakers["gender"] == "female").sum()) <= 1
    assert dict(zip(speakers["speaker"], speakers["gender"])) == dict(zip(df["speaker"], df["gender"]))


def test_audio_sane(corpus):
    out, df = corpus
    for rel in df["path"]:
        info = sf.info(out / rel)
        assert (info.samplerate, info.channels, info.subtype, info.format) == (SR, 1, "PCM_16", "WAV")
        assert demo.MIN_DURATION_S <= info.duration <= demo.MAX_DURATION_S
        pcm, _ = sf.read(out / rel, dtype="int16")
        peak = int(np.abs(pcm.astype(np.int32)).max())
        assert 1000 < peak < 32767, rel  # audible, and never hard against full scale
        assert np.sqrt(np.mean(pcm.astype(float) ** 2)) > 100, rel


def test_deterministic_and_order_independent(tmp_path, corpus):
    out, _ = corpus
    a = write_demo_corpus(tmp_path / "a", speakers=8, utterances_per_emotion=1, seed=7)
    b = write_demo_corpus(tmp_path / "b", speakers=8, utterances_per_emotion=1, seed=7)
    assert a.equals(b)
    da, db = _wav_digests(tmp_path / "a"), _wav_digests(tmp_path / "b")
    assert da == db and len(da) == 8 * len(EMOTIONS)
    # The same file from a bigger corpus (other files, other order) is byte-identical too.
    big = _wav_digests(out)
    assert all(big[rel] == digest for rel, digest in da.items())
    assert (tmp_path / "a" / "speakers.csv").read_bytes() == (out / "speakers.csv").read_bytes()
    # Another seed gives other audio.
    write_demo_corpus(tmp_path / "c", speakers=8, utterances_per_emotion=1, seed=8)
    dc = _wav_digests(tmp_path / "c")
    assert dc.keys() == da.keys()
    assert all(dc[rel] != da[rel] for rel in da)
    # Files within one corpus differ from each other.
    assert len(set(da.values())) == len(da)


def test_rewrite_replaces_and_refuses_foreign_folder(tmp_path):
    out = tmp_path / "demo"
    write_demo_corpus(out, speakers=8, utterances_per_emotion=1, seed=1)
    (out / "spk01" / "stray.wav").write_bytes(b"x")
    write_demo_corpus(out, speakers=8, utterances_per_emotion=1, seed=2)
    assert not (out / "spk01" / "stray.wav").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError):
        write_demo_corpus(foreign, speakers=8, utterances_per_emotion=1)
    assert (foreign / "keep.txt").read_text() == "precious"

    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(write_demo_corpus(empty, speakers=8, utterances_per_emotion=1)) == 8 * len(EMOTIONS)


def test_interrupted_run_leaves_old_corpus(tmp_path, monkeypatch):
    out = tmp_path / "demo"
    write_demo_corpus(out, speakers=8, utterances_per_emotion=1, seed=1)
    before = _wav_digests(out)
    calls = {"n": 0}
    real = demo._synthesize

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 20:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(demo, "_synthesize", flaky)
    with pytest.raises(KeyboardInterrupt):
        write_demo_corpus(out, speakers=8, utterances_per_emotion=1, seed=2)
    assert _wav_digests(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]

    with pytest.raises(KeyboardInterrupt):
        calls["n"] = 0
        write_demo_corpus(tmp_path / "new", speakers=8, utterances_per_emotion=1)
    assert not (tmp_path / "new").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"speakers": 7}, ValueError),
        ({"speakers": 0}, ValueError),
        ({"speakers": 8.0}, TypeError),
        ({"speakers": True}, TypeError),
        ({"utterances_per_emotion": 0}, ValueError),
        ({"sample_rate": 4000}, ValueError),
        ({"seed": -1}, ValueError),
        ({"seed": "7"}, TypeError),
    ],
)
def test_rejects_bad_arguments(tmp_path, kwargs, error):
    with pytest.raises(error) as exc:
        write_demo_corpus(tmp_path / "demo", **kwargs)
    name = next(iter(kwargs))
    assert name in str(exc.value)
    assert not (tmp_path / "demo").exists()


def test_speakers_minimum_message(tmp_path):
    with pytest.raises(ValueError, match=r"at least 8"):
        write_demo_corpus(tmp_path / "demo", speakers=7)


def test_emotion_prosody_exists(features):
    per = features.groupby(["speaker", "emotion"])[["f0", "rms"]].median().unstack("emotion")
    f0, rms = per["f0"], per["rms"]
    # Angry is higher and louder than sad for the same speaker, on average and for most speakers.
    assert (f0["angry"] - f0["sad"]).mean() > 0
    assert (f0["angry"] > f0["sad"]).mean() >= 0.75
    assert (rms["angry"] - rms["sad"]).mean() > 0
    assert (rms["angry"] > rms["sad"]).mean() >= 0.75
    # Surprise and fear are raised, disgust lowered, relative to the speaker's neutral.
    semitones = 12 * np.log2(f0.div(f0["neutral"], axis=0))
    assert semitones["surprise"].mean() > 1.5 and semitones["fear"].mean() > 1.5
    assert semitones["disgust"].mean() < 0


def test_speaker_variation(features):
    by_gender = features.groupby("gender")["f0"].mean()
    assert by_gender["male"] < by_gender["female"]
    neutral = features[features["emotion"] == "neutral"].groupby(["speaker", "gender"])["f0"].median()
    male = neutral.xs("male", level="gender")
    female = neutral.xs("female", level="gender")
    assert male.between(80, 170).all() and female.between(150, 300).all()
    assert male.max() < female.min()


def test_learnable_by_unseen_speakers(features):
    """Mean MFCCs + logistic regression, trained on 6 speakers, beat chance on 2 held-out speakers."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cols = [c for c in features.columns if c.startswith("mfcc")]
    test_speakers = {"spk07", "spk08"}  # one male, one female
    test = features["speaker"].isin(test_speakers)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(features.loc[~test, cols], features.loc[~test, "emotion"])
    accuracy = model.score(features.loc[test, cols], features.loc[test, "emotion"])
    assert accuracy > 2.0 / len(EMOTIONS), accuracy  # well above chance (1/7)
