"""Speaker-bootstrap statistics on hand-made predictions whose answers can be worked out on paper."""
import numpy as np
import pandas as pd
import pytest

from ser.stats import SpeakerCounts, corpus_scores, gender_scores, interval, speaker_table, uar


def clips(corpus, speaker, gender, pairs):
    return [{"corpus": corpus, "speaker": f"{corpus}:{speaker}", "gender": gender, "actual": a, "predicted": p}
            for a, p in pairs]


# ravdess:01 gets both clips right (UAR 1); ravdess:02 calls angry sad (angry 0, sad 1: UAR 0.5).
# Together: angry 1/2, sad 2/2 -> 0.75. emodb has one speaker, UAR 0.5 whatever is drawn.
PRED = pd.DataFrame(
    clips("ravdess", "01", "male", [("angry", "angry"), ("sad", "sad")])
    + clips("ravdess", "02", "female", [("angry", "sad"), ("sad", "sad")])
    + clips("emodb", "03", "male", [("happy", "happy"), ("happy", "happy"), ("fear", "sad"), ("fear", "sad")]))


def test_uar_is_mean_recall_over_true_classes():
    assert uar(["a", "a", "b", "b"], ["a", "b", "b", "b"]) == pytest.approx(0.75)  # a 1/2, b 2/2
    assert uar(["a", "a", "a"], ["a", "c", "c"]) == pytest.approx(1 / 3)  # "c" only predicted: no recall
    assert np.isnan(uar([], []))


def test_per_corpus_uar_and_speaker_interval_by_hand():
    out = corpus_scores(PRED, n_boot=1000, seed=3)
    rav, emo = out["uar_by_corpus"]["ravdess"], out["uar_by_corpus"]["emodb"]
    assert rav["uar"] == 0.75 and (rav["speakers"], rav["n"]) == (2, 4)
    # Draws of two speakers from {01, 02}: {01,01} -> 1.0 (p 1/4), {01,02} -> 0.75 (1/2), {02,02} -> 0.5 (1/4);
    # with 1,000 draws both tails hold ~250 draws, so the 2.5% and 97.5% points are exactly 0.5 and 1.0.
    assert rav["ci"] == [0.5, 1.0]
    assert emo == {"uar": 0.5, "ci": [0.5, 0.5], "speakers": 1, "n": 4}
    # Every corpus counts once: (0.75 + 0.5) / 2, interval ((0.5 + 0.5) / 2, (1.0 + 0.5) / 2).
    assert out["uar_corpus_mean"] == {"uar": 0.625, "ci": [0.5, 0.75]}
    # All 8 clips pooled: angry 1/2, sad 2/2, happy 2/2, fear 0/2.
    assert out["uar_pooled"]["uar"] == 0.625
    assert out["bootstrap"] == {"draws": 1000, "level": 0.95, "unit": "speaker", "strata": ["corpus"], "seed": 3}


def test_draws_resample_speakers_not_clips():
    counts = SpeakerCounts(PRED, ["corpus"])
    draws = counts.draws(500, seed=0)
    # every draw keeps each corpus's speaker count: two from ravdess, one from emodb
    ravdess = counts.column("corpus") == "ravdess"
    assert (draws[:, ravdess].sum(axis=1) == 2).all() and (draws[:, ~ravdess].sum(axis=1) == 1).all()
    # the share of {02, 02} draws is near 1/4 (a clip bootstrap would mix clips of both speakers)
    share = np.mean(draws[:, list(counts.speakers).index("ravdess:02")] == 2)
    assert 0.2 < share < 0.3
    assert np.array_equal(draws, counts.draws(500, seed=0))
    assert not np.array_equal(draws, counts.draws(500, seed=1))


def test_gender_uar_and_gap_by_hand():
    out = gender_scores(PRED, n_boot=1000, seed=0)
    # Strata (corpus, gender) each hold one speaker, so every draw is the data itself.
    assert out["by_gender"]["female"] == {"uar": 0.5, "ci": [0.5, 0.5], "speakers": 1, "n": 2}
    # male pooled: ravdess:01 (angry 1/1, sad 1/1) + emodb:03 (happy 2/2, fear 0/2) -> (1 + 1 + 1 + 0) / 4
    assert out["by_gender"]["male"]["uar"] == 0.75
    # the gap is within ravdess only (emodb has no female speaker here): 0.5 - 1.0
    assert out["gender_gap"] == {"female_minus_male": -0.5, "ci": [-0.5, -0.5], "corpora": ["ravdess"]}


def test_gender_gap_interval_spreads_with_several_speakers():
    rows = []
    for i, right in enumerate([2, 2, 1, 1]):  # female speakers: UAR 1, 1, 0.5, 0.5
        rows += clips("cremad", f"f{i}", "female", [("angry", "angry"), ("sad", "sad" if right == 2 else "angry")])
    for i in range(4):  # male speakers: UAR 0.5
        rows += clips("cremad", f"m{i}", "male", [("angry", "angry"), ("sad", "angry")])
    out = gender_scores(pd.DataFrame(rows), n_boot=1000, seed=0)
    assert out["gender_gap"]["female_minus_male"] == 0.25  # pooled female: angry 4/4, sad 2/4 -> 0.75
    low, high = out["gender_gap"]["ci"]
    assert low < 0.25 < high and low >= 0.0 and high <= 0.5


def test_no_mixed_corpus_gives_no_gap():
    pred = pd.DataFrame(clips("tess", "YAF", "female", [("sad", "sad")]) + clips("savee", "DC", "male", [("sad", "angry")]))
    assert gender_scores(pred, n_boot=10)["gender_gap"] == {"female_minus_male": None, "ci": [None, None], "corpora": []}


def test_interval_and_errors():
    assert interval(np.arange(1001) / 1000) == [0.025, 0.975]
    assert interval(np.array([np.nan])) == [None, None]
    with pytest.raises(ValueError, match="missing"):
        corpus_scores(PRED.drop(columns="speaker"))
    with pytest.raises(ValueError, match="no predictions"):
        corpus_scores(PRED.iloc[:0])


def test_speaker_table():
    table = speaker_table(PRED)
    assert table["speaker"].tolist() == ["emodb:03", "ravdess:01", "ravdess:02"]
    assert table["uar"].tolist() == [0.5, 1.0, 0.5]
    assert table["accuracy"].tolist() == [0.5, 1.0, 0.5]
