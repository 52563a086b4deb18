"""Chunked feature extraction: stable chunks, train-only augmentation, atomic parts, resumption."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ser.demo import write_demo_corpus
from ser.feature_table import FeatureSettings, chunk_done, plan_chunks, read_features, run_chunk, stale_parts
from ser.features import pooled_feature_names
from ser.ingest import ingest_corpus
from ser.params import load_params
from ser.split import build_manifest

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {
    "seed": 3,
    "audio": {"sample_rate": 16000, "normalize": "peak"},
    "augment": {"copies": 2, "noise": {"p": 1.0, "min_snr_db": 15, "max_snr_db": 20},
                "pitch_shift": {"p": 0.5, "min_semitones": -2, "max_semitones": 2}},
    "features": {"n_mfcc": 13, "n_mels": 32, "stats": ["mean", "std"], "logmel_frames": 120},
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo") / "demo"
    write_demo_corpus(root, speakers=8, utterances_per_emotion=1, seed=1)
    labels = load_params(ROOT / "params.yaml").labels["folder"]
    manifest, _ = build_manifest([ingest_corpus(root, "folder", labels, name="demo").manifest],
                                 protocol="speaker", ratios={"train": 0.5, "val": 0.25, "test": 0.25}, seed=0)
    return root, manifest


def run_all(manifest, root, settings, out, chunk_size=20):
    chunks = plan_chunks(manifest, settings, chunk_size)
    for c in chunks:
        if not chunk_done(c, out):
            run_chunk(c, manifest, {"demo": root}, settings, out)
    return chunks


def test_chunks_are_stable_when_another_corpus_is_added(corpus):
    _, manifest = corpus
    settings = FeatureSettings.from_params(PARAMS)
    before = {c.name: c.key for c in plan_chunks(manifest, settings, 10)}
    other = manifest.assign(corpus="zzz", utt_id="zzz/" + manifest["path"])
    after = {c.name: c.key for c in plan_chunks(pd.concat([manifest, other]), settings, 10)}
    assert {k: v for k, v in after.items() if k.startswith("corpus=demo/")} == before
    assert sum(k.startswith("corpus=zzz/") for k in after) == len(before)


def test_only_train_is_augmented_and_everything_is_finite(corpus, tmp_path):
    root, manifest = corpus
    settings = FeatureSettings.from_params(PARAMS)
    run_all(manifest, root, settings, tmp_path)
    pooled = read_features(tmp_path / "pooled")
    names = pooled_feature_names(settings.features)
    n_train = (manifest["split"] == "train").sum()
    assert len(pooled) == len(manifest) + 2 * n_train
    assert set(pooled.loc[pooled["augmented"], "split"]) == {"train"}
    assert sorted(pooled.loc[pooled["augmented"], "copy"].unique()) == [1, 2]
    aug = pooled[pooled["augmented"]].iloc[0]
    assert aug["utt_id"] == f"{aug['source']}#aug{aug['copy']}"
    assert np.isfinite(pooled[names].to_numpy()).all()
    # an augmented copy differs from its source
    src = pooled.set_index("utt_id").loc[aug["source"], names].to_numpy(float)
    assert not np.allclose(src, aug[names].to_numpy(float))
    logmel = read_features(tmp_path / "logmel")
    assert len(logmel) == len(pooled)
    assert len(logmel["logmel"].iloc[0]) == 120 * 32 and (logmel["n_frames"] > 0).all()


def test_rerun_gives_identical_bytes_and_skips_finished_chunks(corpus, tmp_path):
    root, manifest = corpus
    settings = FeatureSettings.from_params(PARAMS)
    chunks = run_all(manifest, root, settings, tmp_path / "a")
    assert all(chunk_done(c, tmp_path / "a") for c in chunks)
    run_all(manifest, root, settings, tmp_path / "b")
    for c in chunks:
        for kind in ("pooled", "logmel"):
            assert (tmp_path / "a" / kind / c.name).read_bytes() == (tmp_path / "b" / kind / c.name).read_bytes()
    changed = FeatureSettings.from_params({**PARAMS, "features": {**PARAMS["features"], "n_mfcc": 12}})
    assert not any(chunk_done(c, tmp_path / "a") for c in plan_chunks(manifest, changed, 20))


def test_interrupted_run_resumes_to_the_same_tables(corpus, tmp_path):
    root, manifest = corpus
    settings = FeatureSettings.from_params(PARAMS)
    run_all(manifest, root, settings, tmp_path / "full", chunk_size=10)
    chunks = plan_chunks(manifest, settings, 10)
    part = tmp_path / "part"
    run_chunk(chunks[0], manifest, {"demo": root}, settings, part)
    # a crash mid-write leaves only a temp file, which no reader sees as a part
    target = part / "pooled" / chunks[1].name
    target.parent.mkdir(parents=True, exist_ok=True)
    (target.parent / f".{target.name}.abc.tmp").write_bytes(b"partial")
    assert not chunk_done(chunks[1], part)
    run_all(manifest, root, settings, part, chunk_size=10)
    pd.testing.assert_frame_equal(read_features(part / "pooled"), read_features(tmp_path / "full" / "pooled"))


def test_stale_parts_are_found(corpus, tmp_path):
    root, manifest = corpus
    settings = FeatureSettings.from_params(PARAMS)
    chunks = run_all(manifest, root, settings, tmp_path, chunk_size=10)
    assert stale_parts(tmp_path, chunks) == []
    fewer = plan_chunks(manifest[manifest["split"] != "test"], settings, 10)
    assert stale_parts(tmp_path, fewer) and all("split=test" in p.as_posix() for p in stale_parts(tmp_path, fewer))


def test_unreadable_audio_is_quarantined_not_fatal(corpus, tmp_path):
    root, manifest = corpus
    broken = tmp_path / "copy"
    import shutil
    shutil.copytree(root, broken)
    victim = manifest[manifest["split"] == "val"].iloc[0]
    (broken / victim["path"]).write_bytes(b"")
    settings = FeatureSettings.from_params(PARAMS)
    chunk = next(c for c in plan_chunks(manifest, settings, 100) if c.split == "val")
    result = run_chunk(chunk, manifest, {"demo": broken}, settings, tmp_path / "out")
    assert result["quarantined"] == 1 and result["rows"] == result["utterances"] - 1


def test_file_progress_logs_first_file_every_n_files_every_s_seconds_and_last():
    from ser.feature_table import FileProgress

    now = [0.0]
    lines: list[str] = []
    progress = FileProgress("corpus=demo/split=train/part-00000", 60, every_files=25, every_s=10.0,
                            clock=lambda: now[0], log=lines.append)
    times = [72.0] + [72.0 + 0.1 * i for i in range(1, 60)]  # a slow first file, then 10 files/s
    times[40] = times[39] + 12.0  # one file stuck for 12 s
    for i, t in enumerate(times):
        now[0] = t if i <= 40 else t + 12.0
        progress.step(rows=(i + 1) * 3)
    done = [int(line.split(": ")[1].split("/")[0]) for line in lines]
    assert done == [1, 26, 41, 60]
    assert lines[0] == ("features corpus=demo/split=train/part-00000: 1/60 files, 3 rows, 72.0 s "
                        "(0.0 files/s)")
    assert lines[-1].startswith("features corpus=demo/split=train/part-00000: 60/60 files, 180 rows")


def test_run_chunk_logs_its_files(corpus, tmp_path, caplog):
    root, manifest = corpus
    settings = FeatureSettings.from_params(PARAMS)
    chunk = plan_chunks(manifest, settings, 4)[0]
    with caplog.at_level("INFO", logger="ser"):
        run_chunk(chunk, manifest, {"demo": root}, settings, tmp_path / "out")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("features ")]
    assert lines[0].split(": ")[1].startswith(f"1/{len(chunk.rows)} files")
    assert lines[-1].split(": ")[1].startswith(f"{len(chunk.rows)}/{len(chunk.rows)} files")


def test_a_pool_of_two_workers_gives_the_rows_of_one_process(corpus):
    """Per-process state (filter-bank caches, the openSMILE engine) never leaks into another clip's row."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from ser.feature_table import extract_chunk

    pytest.importorskip("opensmile")
    root, manifest = corpus
    settings = FeatureSettings.from_params({**PARAMS, "features": {**PARAMS["features"], "opensmile": "eGeMAPSv02"}})
    chunks = [c for c in plan_chunks(manifest, settings, 4) if c.split != "train"]
    args = [(c, manifest, {"demo": root}, settings) for c in chunks]
    one = [extract_chunk(*a) for a in args]  # this process holds warm caches and an engine before the fork
    with ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as pool:
        two = list(pool.map(extract_chunk, *zip(*args)))
    assert len(chunks) >= 3 and sum(c.startswith("egemaps_") for c in one[0][0].columns) == 88
    for (pooled_a, logmel_a, q_a), (pooled_b, logmel_b, q_b) in zip(one, two):
        pd.testing.assert_frame_equal(pooled_a, pooled_b, check_exact=True)
        np.testing.assert_array_equal(np.stack(logmel_a["logmel"]), np.stack(logmel_b["logmel"]))
        assert q_a == q_b
