"""Speaker-independent splits: no speaker in two splits, whatever the speakers look like."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ser.split import build_manifest, cross_corpus_split, drop_duplicates, loso_folds, per_corpus_split, speaker_split

RATIOS = {"train": 0.7, "val": 0.15, "test": 0.15}


def make_manifest(speakers: list[tuple[str, str, int]]) -> pd.DataFrame:
    """Rows for (corpus, gender, n_utterances) per speaker; sha1 unique per row."""
    rows = []
    for i, (corpus, gender, n) in enumerate(speakers):
        for j in range(n):
            rows.append({"utt_id": f"{corpus}/s{i}_{j}.wav", "path": f"s{i}_{j}.wav", "corpus": corpus,
                         "speaker": f"{corpus}:s{i}", "gender": gender, "emotion": "neutral",
                         "duration_s": 1.0, "sha1": f"{i:020d}{j:020d}"})
    return pd.DataFrame(rows)


speaker_lists = st.lists(
    st.tuples(st.sampled_from(["ravdess", "tess", "emodb", "demo"]), st.sampled_from(["male", "female", "unknown"]),
              st.integers(1, 5)),
    min_size=3, max_size=40)


@settings(max_examples=60, deadline=None)
@given(speakers=speaker_lists, seed=st.integers(0, 2**31), val=st.floats(0.05, 0.3), test=st.floats(0.05, 0.3))
def test_no_speaker_in_two_splits(speakers, seed, val, test):
    df = make_manifest(speakers)
    ratios = {"train": 1 - val - test, "val": val, "test": test}
    split = speaker_split(df, ratios, seed)
    assert split.notna().all()
    assert (df.assign(split=split).groupby("speaker")["split"].nunique() == 1).all()
    n_speakers = df["speaker"].nunique()
    per_split = df.assign(split=split).groupby("split")["speaker"].nunique()
    assert set(per_split.index) == {"train", "val", "test"}  # every split gets a speaker
    for name, ratio in ratios.items():
        # within one speaker of its share, or two where the one-speaker minimum took from it
        assert abs(per_split[name] - ratio * n_speakers) < 2


def test_split_is_seeded_and_balanced_by_gender():
    df = make_manifest([("demo", "male" if i % 2 else "female", 4) for i in range(20)])
    a, b = speaker_split(df, RATIOS, 3), speaker_split(df, RATIOS, 3)
    assert a.equals(b)
    assert not a.equals(speaker_split(df, RATIOS, 4))
    by = df.assign(split=a).groupby(["split", "gender"])["speaker"].nunique().unstack()
    assert by.loc["train"].tolist() == [7, 7]  # 14 train speakers, interleaved by gender
    assert set(by.loc["val"]) == {1, 2} and set(by.loc["test"]) == {1, 2}


def test_shared_corpora_shape_gets_one_speaker_per_held_out_split():
    # the real ../shared subset: two RAVDESS actors, TESS YAF, two EmoDB speakers
    df = make_manifest([("ravdess", "male", 60), ("ravdess", "female", 60), ("tess", "female", 210),
                        ("emodb", "male", 49), ("emodb", "female", 43)])
    split = df.assign(split=speaker_split(df, RATIOS, 42)).groupby("split")["speaker"].nunique()
    assert split.to_dict() == {"test": 1, "train": 3, "val": 1}


def test_adding_a_corpus_does_not_move_other_speakers():
    demo = make_manifest([("demo", "male" if i % 2 else "female", 2) for i in range(12)])
    big = make_manifest([("demo", "male" if i % 2 else "female", 2) for i in range(12)]
                        + [("cremad", "female", 2)] * 9 + [("tess", "female", 3), ("emodb", "male", 2), ("emodb", "female", 2)])
    alone, _ = build_manifest([demo], protocol="speaker", ratios=RATIOS, seed=5)
    together, _ = build_manifest([big], protocol="speaker", ratios=RATIOS, seed=5)
    before = alone.set_index("utt_id")["split"]
    after = together.set_index("utt_id")["split"]
    assert after[before.index].equals(before)
    # the one- and two-speaker corpora are pooled, so each split still gets one of their speakers
    small = together[together["corpus"].isin(["tess", "emodb"])]
    assert small.groupby("split")["speaker"].nunique().to_dict() == {"test": 1, "train": 1, "val": 1}
    assert together[together["corpus"] == "cremad"].groupby("split")["speaker"].nunique().to_dict() == \
        {"test": 2, "train": 5, "val": 2}  # 9 x 0.15 = 1.35, then test raised to two speakers


def test_too_few_speakers_is_a_clear_error():
    df = make_manifest([("demo", "male", 3), ("demo", "female", 3)])
    with pytest.raises(ValueError, match="at least 3 speakers; found 2"):
        speaker_split(df, RATIOS, 0)


def test_cross_corpus_holds_out_whole_corpora():
    df = make_manifest([("ravdess", "male", 2)] * 6 + [("tess", "female", 3)] * 2)
    split = cross_corpus_split(df, ["tess"], RATIOS, 1)
    assert (split[df["corpus"] == "tess"] == "test").all()
    assert set(split[df["corpus"] == "ravdess"]) == {"train", "val"}


def test_duplicates_keep_the_first_and_quarantine_the_rest():
    df = make_manifest([("ravdess", "male", 2), ("tess", "female", 2)])
    df.loc[3, "sha1"] = df.loc[0, "sha1"]  # tess/s1_1.wav is the same audio as ravdess/s0_0.wav
    kept, dupes = drop_duplicates(df)
    assert len(kept) == 3 and "tess/s1_1.wav" not in set(kept["utt_id"])
    assert dupes.to_dict("records") == [{"corpus": "tess", "path": "s1_1.wav", "kind": "duplicate",
                                         "reason": "same audio (sha1) as ravdess/s0_0.wav"}]


def test_loso_folds_one_per_speaker():
    df = make_manifest([("demo", "male", 2), ("demo", "female", 3), ("emodb", "male", 1)])
    folds = loso_folds(df)
    assert folds.tolist() == [0, 0, 1, 1, 1, 2]
    assert df.groupby(folds)["speaker"].nunique().eq(1).all()


def test_build_manifest_adds_split_and_fold():
    df = make_manifest([("demo", "male" if i % 2 else "female", 3) for i in range(8)])
    merged, dupes = build_manifest([df.iloc[:12], df.iloc[12:]], protocol="speaker", ratios=RATIOS, seed=1)
    assert len(merged) == 24 and dupes.empty
    assert {"split", "fold"} <= set(merged.columns)
    assert merged.groupby("speaker")["split"].nunique().max() == 1
    assert np.array_equal(np.sort(merged["fold"].unique()), np.arange(8))


def _speakers_per_split(df: pd.DataFrame, split: pd.Series) -> dict[str, dict[str, int]]:
    counts = df.assign(split=split).groupby(["corpus", "split"])["speaker"].nunique().unstack(fill_value=0)
    return {c: {k: int(v) for k, v in row.items()} for c, row in counts.iterrows()}


def test_seven_corpora_shape_gives_several_held_out_speakers_per_corpus():
    # the shape of the seven shared corpora: CREMA-D 60 actors, RAVDESS 8, then five pooled small ones
    cremad = [("cremad", "male" if i % 2 else "female", 12) for i in range(60)]
    ravdess = [("ravdess", "male" if i % 2 else "female", 15) for i in range(8)]
    small = [("emodb", "male", 49), ("emodb", "female", 43), ("savee", "male", 40), ("savee", "male", 40),
             ("casia", "male", 120), ("casia", "female", 120), ("tess", "female", 210), ("esd", "male", 100)]
    df = make_manifest(cremad + ravdess + small)
    split = per_corpus_split(df, RATIOS, 42)
    per = _speakers_per_split(df, split)
    assert per["cremad"] == {"train": 42, "val": 9, "test": 9}
    assert per["ravdess"] == {"train": 4, "val": 2, "test": 2}
    pooled = df["corpus"].isin(["emodb", "savee", "casia", "tess", "esd"])
    assert df[pooled].assign(split=split).groupby("split")["speaker"].nunique().to_dict() == \
        {"train": 4, "val": 2, "test": 2}
    assert (df.assign(split=split).groupby("speaker")["split"].nunique() == 1).all()
    # the old rule (one speaker minimum) gave RAVDESS a single validation and a single test actor
    assert _speakers_per_split(df, per_corpus_split(df, RATIOS, 42, min_eval_speakers=1))["ravdess"] == \
        {"train": 6, "val": 1, "test": 1}


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(1, 30), min_size=1, max_size=5), seed=st.integers(0, 2**31))
def test_per_corpus_split_minimum_holds_where_train_keeps_half(sizes, seed):
    speakers = [(f"c{c}", "male" if i % 3 else "female", 2) for c, n in enumerate(sizes) for i in range(n)]
    df = make_manifest(speakers)
    split = per_corpus_split(df, RATIOS, seed)
    assert (df.assign(split=split).groupby("speaker")["split"].nunique() == 1).all()
    for corpus, counts in _speakers_per_split(df, split).items():
        n = sum(counts.values())
        if n >= 8:  # 0.7/0.15/0.15 of eight or more: two val and two test speakers, train at least half
            assert counts["val"] >= 2 and counts["test"] >= 2, (corpus, counts)
            assert 2 * counts["train"] >= n


def test_a_pool_too_small_for_three_splits_goes_to_train_and_test():
    # RAVDESS's eight actors beside EmoDB's two speakers: EmoDB alone is the pool
    df = make_manifest([("ravdess", "male" if i % 2 else "female", 4) for i in range(8)]
                       + [("emodb", "male", 5), ("emodb", "female", 5)])
    per = _speakers_per_split(df, per_corpus_split(df, RATIOS, 0))
    assert per["ravdess"] == {"train": 4, "val": 2, "test": 2}
    assert per["emodb"] == {"train": 1, "val": 0, "test": 1}
    lone = make_manifest([("ravdess", "male", 2)] * 8 + [("tess", "female", 3)])
    assert _speakers_per_split(lone, per_corpus_split(lone, RATIOS, 0))["tess"] == {"train": 1, "val": 0, "test": 0}
