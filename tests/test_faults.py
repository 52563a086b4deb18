"""Hostile inputs: broken, odd and duplicated audio files go through ingest, the speaker split and
feature extraction. Each file is either used correctly or quarantined with a reason, no stage
crashes, every good file is kept, and the counts add up (files seen = kept + quarantined, per kind).

The fault corpus is the folder-per-emotion layout (`<root>/<speaker>/<emotion>/*.wav`, format
`folder`) with the project's `labels.folder` map and `ingest` limits (0.1 s to 60 s). Expected
behaviour, case by case:

=========================================  ===============================================  =======================
case                                       ingest                                           features
=========================================  ===============================================  =======================
8-bit unsigned, 24- and 32-bit int PCM     kept; rate, channels, duration from the header   finite features
32- and 64-bit float                       kept                                             finite features
stereo, 6-channel                          kept; channels 2 / 6                             mean down-mix to mono
8 kHz, 96 kHz                              kept; sample_rate 8000 / 96000                   resampled to 16 kHz
pure digital silence                       kept                                             finite (-100 dB floor)
clipped (square-topped at full scale)      kept                                             finite features
0.1 s (exactly ingest.min_duration_s)      kept                                             11 frames, finite
0.05 s                                     quarantined: audio, "duration 0.050 s outside"   -
10 minutes (sparse file, header only read) quarantined: audio, "duration 600.000 s outside"  -
name with spaces and non-ASCII characters  kept; utt_id holds the name as is                finite features
symlink to a good file outside the corpus  kept (the link is followed)                      finite features
truncated WAV (cut in the data)            quarantined: audio, "truncated"                  -
truncated WAV (cut in the header)          quarantined: audio, "unreadable"                 -
zero-length file                           quarantined: audio, "empty file (0 bytes)"       -
text file named .wav                       quarantined: audio, "not a supported audio file" -
float WAV with NaN / inf samples           kept (ingest reads headers only)                 quarantined: audio,
                                                                                            "non-finite samples"
broken symlink                             quarantined: audio, "broken symbolic link"       -
symlink loop (a -> b -> a)                 quarantined: audio, "symbolic link loop"         -
unreadable (no read permission)            quarantined: audio, "permission denied"          -
unknown label folder (bored/)              quarantined: label, "raw label 'bored'"          -
file outside the layout (at the root)      quarantined: scheme, "found 0 folder level(s)"   -
same audio in two corpora                  both kept; the split stage keeps the first       -
                                           (corpus, path) and quarantines the other:
                                           duplicate, "same audio (sha1) as faults/..."
non-audio extension (notes.txt)            not an audio file: not listed, not counted       -
=========================================  ===============================================  =======================

Features run on every kept row as a *training* row with every augmentation at p = 1, so silence,
the 0.1 s clip and the rest are also pitch-shifted, stretched, shifted, scaled and noised.
The unreadable case has its own test: as root, chmod 000 does not stop reading, so that test drops
to an unprivileged user in a forked child (and skips, with a reason, where it cannot).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from ser.feature_table import FeatureSettings, chunk_quarantine, plan_chunks, read_features, run_chunk
from ser.ingest import concat, ingest_corpus, summary
from ser.params import load_params
from ser.split import build_manifest

ROOT = Path(__file__).resolve().parents[1]
PARAMS = load_params(ROOT / "params.yaml")
LABELS = PARAMS.labels["folder"]
LIMITS = {"min_duration_s": PARAMS.ingest.min_duration_s, "max_duration_s": PARAMS.ingest.max_duration_s}
UNICODE_NAME = "späte Grüße – 情绪 take 1.wav"

# path in the fault corpus -> (sample_rate, channels, duration_s) of a file ingest must keep
KEPT = {
    "s1/happy/pcm_16.wav": (16000, 1, 1.0),
    "s1/happy/pcm_u8.wav": (16000, 1, 1.0),
    "s1/happy/pcm_24.wav": (16000, 1, 1.0),
    "s1/happy/pcm_32.wav": (16000, 1, 1.0),
    "s1/happy/float_32.wav": (16000, 1, 1.0),
    "s1/happy/float_64.wav": (16000, 1, 1.0),
    "s1/happy/stereo.wav": (16000, 2, 1.0),
    "s1/happy/six_channels.wav": (48000, 6, 0.5),
    "s1/sad/rate_8k.wav": (8000, 1, 1.0),
    "s1/sad/rate_96k.wav": (96000, 1, 0.5),
    "s1/sad/silence.wav": (16000, 1, 1.0),
    "s1/sad/clipped.wav": (16000, 1, 1.0),
    "s1/sad/short_0.1s.wav": (16000, 1, 0.1),
    f"s1/sad/{UNICODE_NAME}": (22050, 1, 0.5),
    "s2/angry/linked_outside.wav": (16000, 1, 0.5),
    "s2/angry/nan_inf.wav": (16000, 1, 0.5),
    "s2/angry/copied.wav": (16000, 1, 0.5),
    "s3/neutral/tone.wav": (16000, 1, 0.5),
}
# path -> (kind, reason substring) for a file ingest must quarantine
QUARANTINED = {
    "s1/sad/too_short_0.05s.wav": ("audio", "duration 0.050 s outside [0.1, 60.0]"),
    "s1/sad/long_10min.wav": ("audio", "duration 600.000 s outside [0.1, 60.0]"),
    "s2/angry/truncated.wav": ("audio", "truncated: the WAV header declares"),
    "s2/angry/cut_in_header.wav": ("audio", "unreadable, not a supported audio file"),
    "s2/angry/zero_length.wav": ("audio", "empty file (0 bytes), not audio"),
    "s2/angry/text.wav": ("audio", "unreadable, not a supported audio file"),
    "s2/angry/broken_link.wav": ("audio", "broken symbolic link"),
    "s2/angry/loop_a.wav": ("audio", "symbolic link loop"),
    "s2/angry/loop_b.wav": ("audio", "symbolic link loop"),
    "s2/bored/tone.wav": ("label", "raw label 'bored' is not in labels.folder"),
    "stray.wav": ("scheme", "found 0 folder level(s)"),
}
# path -> reason substring for a file ingest keeps but feature extraction quarantines
FEATURES_QUARANTINED = {"s2/angry/nan_inf.wav": "non-finite samples (NaN or inf)"}
# the second corpus: its one file is byte-identical to faults' s2/angry/copied.wav
DUPLICATE = ("other", "a1/angry/original.wav", "same audio (sha1) as faults/s2/angry/copied.wav")


def _tone(seconds: float, sr: int, freq: float, amp: float = 0.3) -> np.ndarray:
    """A tone whose frequency makes every file's bytes distinct (identical files are duplicates)."""
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float64)


def _sparse_silent_wav(path: Path, seconds: float, sr: int) -> None:
    """A canonical 16-bit mono WAV header followed by a hole: a long file that costs no disk or time."""
    n = int(seconds * sr) * 2
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + n, b"WAVE", b"fmt ", 16, 1, 1, sr, 2 * sr, 2, 16,
                         b"data", n)
    with open(path, "wb") as fh:
        fh.write(header)
        fh.truncate(len(header) + n)


def write_fault_corpora(base: Path) -> tuple[Path, Path]:
    """Write the fault corpus and the second corpus (holding the cross-corpus duplicate) under `base`."""
    faults, other = base / "faults", base / "other"
    freq = iter(range(200, 2000, 37))

    def wav(rel: str, data: np.ndarray, sr: int = 16000, subtype: str = "PCM_16") -> Path:
        path = faults / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, data, sr, subtype=subtype, format="WAV")
        return path

    for subtype in ("PCM_16", "PCM_U8", "PCM_24", "PCM_32"):
        wav(f"s1/happy/pcm_{subtype.split('_')[1].lower()}.wav", _tone(1.0, 16000, next(freq)), subtype=subtype)
    wav("s1/happy/float_32.wav", _tone(1.0, 16000, next(freq)), subtype="FLOAT")
    wav("s1/happy/float_64.wav", _tone(1.0, 16000, next(freq)), subtype="DOUBLE")
    wav("s1/happy/stereo.wav", np.stack([_tone(1.0, 16000, next(freq)), _tone(1.0, 16000, next(freq))], axis=1))
    wav("s1/happy/six_channels.wav", np.stack([_tone(0.5, 48000, next(freq)) for _ in range(6)], axis=1), sr=48000)
    wav("s1/sad/rate_8k.wav", _tone(1.0, 8000, next(freq)), sr=8000)
    wav("s1/sad/rate_96k.wav", _tone(0.5, 96000, next(freq)), sr=96000)
    wav("s1/sad/silence.wav", np.zeros(16000))
    wav("s1/sad/clipped.wav", np.clip(_tone(1.0, 16000, next(freq), amp=4.0), -1.0, 1.0))
    wav("s1/sad/short_0.1s.wav", _tone(0.1, 16000, next(freq)))
    wav("s1/sad/too_short_0.05s.wav", _tone(0.05, 16000, next(freq)))
    wav(f"s1/sad/{UNICODE_NAME}", _tone(0.5, 22050, next(freq)), sr=22050)
    _sparse_silent_wav(faults / "s1/sad/long_10min.wav", 600.0, 8000)

    angry = faults / "s2/angry"
    good = wav("s2/angry/copied.wav", _tone(0.5, 16000, next(freq)))
    full = wav("s2/angry/tmp_full.wav", _tone(1.0, 16000, next(freq))).read_bytes()
    (angry / "tmp_full.wav").unlink()
    (angry / "truncated.wav").write_bytes(full[: len(full) // 2])
    (angry / "cut_in_header.wav").write_bytes(full[:30])
    (angry / "zero_length.wav").write_bytes(b"")
    (angry / "text.wav").write_text("this is a text file, not audio\n" * 20)
    nan = _tone(0.5, 16000, next(freq)).astype(np.float32)
    nan[100], nan[200], nan[300] = np.nan, np.inf, -np.inf
    wav("s2/angry/nan_inf.wav", nan, subtype="FLOAT")
    (angry / "broken_link.wav").symlink_to(angry / "no_such_file.wav")
    (angry / "loop_a.wav").symlink_to(angry / "loop_b.wav")
    (angry / "loop_b.wav").symlink_to(angry / "loop_a.wav")
    outside = base / "outside" / "target.wav"
    outside.parent.mkdir()
    sf.write(outside, _tone(0.5, 16000, next(freq)), 16000, subtype="PCM_16")
    (angry / "linked_outside.wav").symlink_to(outside)
    wav("s2/bored/tone.wav", _tone(0.5, 16000, next(freq)))
    wav("s3/neutral/tone.wav", _tone(0.5, 16000, next(freq)))
    (faults / "s3/neutral/notes.txt").write_text("not audio: never listed")
    wav("stray.wav", _tone(0.5, 16000, next(freq)))

    (other / "a1/angry").mkdir(parents=True)
    shutil.copyfile(good, other / DUPLICATE[1])
    return faults, other


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Ingest both corpora, split (dropping the duplicate), and extract features of every kept row."""
    base = tmp_path_factory.mktemp("faults")
    faults, other = write_fault_corpora(base)
    ingested = [ingest_corpus(faults, "folder", LABELS, name="faults", **LIMITS),
                ingest_corpus(other, "folder", LABELS, name="other", **LIMITS)]
    manifest, dupes = build_manifest([r.manifest for r in ingested], protocol="speaker",
                                     ratios={"train": 0.5, "val": 0.25, "test": 0.25}, seed=0)
    params = {
        "seed": 1, "audio": {"sample_rate": 16000, "normalize": "peak"},
        "features": {"logmel_frames": 40},
        "augment": {"copies": 1, "noise": {"p": 1.0}, "pitch_shift": {"p": 1.0}, "time_stretch": {"p": 1.0},
                    "gain": {"p": 1.0}, "shift": {"p": 1.0}},
    }
    settings = FeatureSettings.from_params(params)
    as_train = manifest.assign(split="train")  # every row also gets an augmented copy
    chunks = plan_chunks(as_train, settings, chunk_size=8)
    roots = {"faults": faults, "other": other}
    results = [run_chunk(c, as_train, roots, settings, base / "features") for c in chunks]
    return {
        "base": base, "ingested": ingested, "manifest": manifest, "dupes": dupes, "chunks": chunks,
        "results": results, "settings": settings,
        "pooled": read_features(base / "features" / "pooled"),
        "logmel": read_features(base / "features" / "logmel"),
        "features_quarantine": chunk_quarantine(base / "features", chunks),
    }


def test_ingest_keeps_every_good_file_with_its_header_values(run):
    m = run["ingested"][0].manifest.set_index("path")
    assert sorted(m.index) == sorted(KEPT)
    for path, (rate, channels, duration) in KEPT.items():
        row = m.loc[path]
        assert (row.sample_rate, row.channels) == (rate, channels), path
        assert row.duration_s == pytest.approx(duration, abs=1e-6), path
        assert len(row.sha1) == 40 and row.corpus == "faults" and row.utt_id == f"faults/{path}"
    assert m.loc[f"s1/sad/{UNICODE_NAME}", "emotion"] == "sad"
    assert m.loc["s2/angry/linked_outside.wav", "emotion"] == "angry"


def test_ingest_quarantines_every_bad_file_with_a_reason(run):
    q = run["ingested"][0].quarantine
    assert not q["path"].duplicated().any()
    q = q.set_index("path")
    assert sorted(q.index) == sorted(QUARANTINED)
    for path, (kind, reason) in QUARANTINED.items():
        assert q.loc[path, "kind"] == kind, path
        assert reason in q.loc[path, "reason"], (path, q.loc[path, "reason"])


def test_ingest_summary_counts_add_up(run):
    faults, other = (summary(r) for r in run["ingested"])
    s = faults["faults"]
    assert s["files"] == len(KEPT) + len(QUARANTINED) == s["kept"] + sum(s["quarantined"].values())
    assert s["kept"] == len(KEPT)
    expected_kinds = pd.Series([k for k, _ in QUARANTINED.values()]).value_counts().to_dict()
    assert s["quarantined"] == expected_kinds == {"audio": 9, "label": 1, "scheme": 1}
    assert s["speakers"] == 3 and s["emotions"]["happy"] == 8 and s["emotions"]["sad"] == 6
    assert other["other"] == {**other["other"], "files": 1, "kept": 1, "quarantined": {}}
    both = summary(concat(run["ingested"]))
    assert both.keys() == {"faults", "other"}


def test_the_same_audio_in_two_corpora_is_kept_once(run):
    manifest, dupes = run["manifest"], run["dupes"]
    corpus, path, reason = DUPLICATE
    assert dupes[["corpus", "path", "kind"]].values.tolist() == [[corpus, path, "duplicate"]]
    assert reason in dupes["reason"].iloc[0]
    assert "faults/s2/angry/copied.wav" in set(manifest["utt_id"])
    assert len(manifest) + len(dupes) == sum(len(r.manifest) for r in run["ingested"])
    assert not manifest["sha1"].duplicated().any()


def test_features_for_every_kept_file_are_finite(run):
    pooled, logmel, manifest = run["pooled"], run["logmel"], run["manifest"]
    names = [c for c in pooled.columns if c not in ("utt_id", "corpus", "speaker", "gender", "emotion", "split",
                                                    "fold", "augmented", "copy", "source")]
    values = pooled[names].to_numpy()
    assert values.shape[1] > 100 and np.isfinite(values).all()
    assert all(np.isfinite(np.asarray(seq)).all() for seq in logmel["logmel"])
    originals = pooled[~pooled["augmented"]]
    expected = set(manifest["utt_id"]) - {f"faults/{p}" for p in FEATURES_QUARANTINED}
    assert set(originals["utt_id"]) == expected
    assert set(pooled.loc[pooled["augmented"], "source"]) == expected  # every kept file got its augmented copy
    frames = logmel.set_index("utt_id")["n_frames"]
    assert frames["faults/s1/sad/short_0.1s.wav"] == 1 + 1600 // 160
    assert frames["faults/s1/happy/six_channels.wav"] == frames["faults/s1/sad/rate_96k.wav"] == 1 + 8000 // 160
    silence = originals.set_index("utt_id").loc["faults/s1/sad/silence.wav"]
    assert silence["rms_mean"] == 0.0 and silence["mel_001_mean"] == pytest.approx(-100.0)


def test_features_quarantine_non_finite_audio_and_counts_add_up(run):
    q = run["features_quarantine"]
    assert q[["corpus", "path", "kind"]].values.tolist() == [["faults", p, "audio"] for p in FEATURES_QUARANTINED]
    for path, reason in FEATURES_QUARANTINED.items():
        assert reason in q.set_index("path").loc[path, "reason"]
    results, manifest = run["results"], run["manifest"]
    assert sum(r["utterances"] for r in results) == len(manifest)
    assert sum(r["quarantined"] for r in results) == len(q)
    extracted = int((~run["pooled"]["augmented"]).sum())
    assert extracted + len(q) == len(manifest)
    # nothing lost: every file seen is in the features or in exactly one quarantine, with a reason
    seen = len(KEPT) + len(QUARANTINED) + 1
    quarantined = pd.concat([*(r.quarantine for r in run["ingested"]), run["dupes"], q], ignore_index=True)
    assert extracted + len(quarantined) == seen
    assert quarantined["reason"].str.len().min() > 10
    assert not quarantined.duplicated(["corpus", "path"]).any()


def test_every_part_file_records_its_quarantine(run):
    for chunk in run["chunks"]:
        import pyarrow.parquet as pq

        meta = pq.read_schema(run["base"] / "features" / "pooled" / chunk.name).metadata
        assert isinstance(json.loads(meta[b"ser.quarantine"]), list)
    assert not list((run["base"] / "features").rglob(".*.tmp"))


# --- unreadable file -------------------------------------------------------------------------------

def _ingest_as_nobody(root: str, conn) -> None:  # pragma: no cover - runs in a forked child
    try:
        os.setegid(65534)
        os.seteuid(65534)
    except OSError as err:
        conn.send(("no-setuid", repr(err), []))
        conn.close()
        os._exit(0)
    try:
        result = ingest_corpus(root, "folder", LABELS, name="perm", workers=1, **LIMITS)
        conn.send(("ok", result.manifest["path"].tolist(), result.quarantine.to_dict("records")))
    except BaseException as err:  # report anything, never hang the parent
        conn.send(("error", repr(err), []))
    finally:
        conn.close()
        os._exit(0)


def test_unreadable_file_is_quarantined(tmp_path, write_wav):
    """chmod 000 stops an ordinary user reading; root reads anyway, so as root the ingest runs in a
    forked child that has dropped to the unprivileged `nobody` (uid 65534)."""
    if os.geteuid() != 0:
        root = tmp_path / "perm"
        write_wav(root / "s1/happy/ok.wav", seconds=0.5)
        locked = write_wav(root / "s1/happy/locked.wav", seconds=0.6)
        locked.chmod(0)
        try:
            result = ingest_corpus(root, "folder", LABELS, name="perm", workers=1, **LIMITS)
        finally:
            locked.chmod(0o644)
        kept, quarantine = result.manifest["path"].tolist(), result.quarantine.to_dict("records")
    else:
        if "fork" not in multiprocessing.get_all_start_methods():
            pytest.skip("running as root without fork(): cannot make a file unreadable to this process")
        # the unprivileged child must be able to walk the folders, so they live in a world-readable dir
        top = Path(tempfile.mkdtemp(prefix="ser-perm-"))
        try:
            top.chmod(0o755)
            root = top / "perm"
            write_wav(root / "s1/happy/ok.wav", seconds=0.5)
            write_wav(root / "s1/happy/locked.wav", seconds=0.6).chmod(0)
            for folder in (root, root / "s1", root / "s1/happy"):
                folder.chmod(0o755)
            (root / "s1/happy/ok.wav").chmod(0o644)
            parent, child = multiprocessing.get_context("fork").Pipe(duplex=False)
            proc = multiprocessing.get_context("fork").Process(target=_ingest_as_nobody, args=(str(root), child))
            proc.start()
            child.close()
            if not parent.poll(60):
                proc.kill()
                pytest.fail("the unprivileged ingest did not answer within 60 s")
            status, kept, quarantine = parent.recv()
            proc.join(10)
        finally:
            shutil.rmtree(top, ignore_errors=True)
        if status == "no-setuid":
            pytest.skip(f"cannot drop privileges here to make a file unreadable: {kept}")
        assert status == "ok", kept
    assert kept == ["s1/happy/ok.wav"]
    assert [(q["path"], q["kind"]) for q in quarantine] == [("s1/happy/locked.wav", "audio")]
    assert "permission denied" in quarantine[0]["reason"]


# --- the truncation check ----------------------------------------------------------------------------

@pytest.mark.parametrize("declared, missing", [
    (0xFFFFFFFF, 0),  # streaming writers' "length unknown" placeholder: the file is whole
    (0x7FFFFFFF, 0),
    (32000, 0),       # the true size
    (64000, 32000),   # the header promises twice what the file holds: a cut-off copy
])
def test_probe_tells_a_truncated_wav_from_a_streamed_one(tmp_path, declared, missing):
    from ser.audio import probe

    path = tmp_path / "x.wav"
    sf.write(path, _tone(1.0, 16000, 440.0), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    at = data.index(b"data") + 4
    data[at:at + 4] = struct.pack("<I", declared)
    path.write_bytes(bytes(data))
    info = probe(path)
    assert info.frames == 16000 and info.missing_bytes == missing
