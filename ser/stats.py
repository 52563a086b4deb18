"""How sure a score is: per-corpus UAR, their mean, and 95% intervals from resampling SPEAKERS.

Clips of one speaker are not independent (one voice, one microphone, one actor's reading), so a
bootstrap over clips makes intervals far too narrow. Here each draw resamples speakers with
replacement within their stratum (the corpus, or corpus and gender for the fairness figures),
keeps every clip of each drawn speaker, and recomputes the statistic; the interval is the 2.5th and
97.5th percentile of 1,000 seeded draws. A corpus with one speaker gets a zero-width interval: it
says nothing about other speakers, and its `speakers` count says so.

Input everywhere is a predictions frame, one row per test clip: `corpus`, `speaker`, `gender`,
`actual`, `predicted` (labels of any hashable kind; EMOTIONS names in this project).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

N_BOOT = 1000
LEVEL = 0.95
DIGITS = 4
PREDICTION_COLUMNS = ("corpus", "speaker", "actual", "predicted")


def _round(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), DIGITS)


def uar(actual: Sequence[Any], predicted: Sequence[Any]) -> float:
    """Unweighted average recall: mean recall over the classes present in `actual` (NaN when empty)."""
    actual, predicted = np.asarray(actual), np.asarray(predicted)
    if not len(actual):
        return float("nan")
    classes = np.unique(actual)
    return float(np.mean([np.mean(predicted[actual == c] == c) for c in classes]))


def _check(pred: pd.DataFrame, extra: Sequence[str] = ()) -> None:
    missing = [c for c in (*PREDICTION_COLUMNS, *extra) if c not in pred.columns]
    if missing:
        raise ValueError(f"predictions need columns {[*PREDICTION_COLUMNS, *extra]}; missing {missing}")
    if pred.empty:
        raise ValueError("no predictions to score")


class SpeakerCounts:
    """Each speaker's confusion counts, so a bootstrap draw is a weighted sum instead of a re-scan of clips."""

    def __init__(self, pred: pd.DataFrame, strata: Sequence[str]):
        _check(pred, [s for s in strata if s not in PREDICTION_COLUMNS])
        self.classes = sorted(set(pred["actual"]) | set(pred["predicted"]), key=str)
        index = {c: i for i, c in enumerate(self.classes)}
        k = len(self.classes)
        info = pred.groupby("speaker", sort=True)[list(dict.fromkeys(["corpus", *strata]))].first()
        self.speakers = info.index.to_numpy()
        self.info = info.reset_index()
        row = pd.Series(np.arange(len(self.speakers)), index=self.speakers)[pred["speaker"]].to_numpy()
        cell = pred["actual"].map(index).to_numpy() * k + pred["predicted"].map(index).to_numpy()
        counts = np.zeros((len(self.speakers), k * k), dtype=np.int64)
        np.add.at(counts, (row, cell), 1)
        self.counts = counts.reshape(len(self.speakers), k, k)
        groups = self.info.groupby(list(strata), sort=True).indices if strata else {(): np.arange(len(self.speakers))}
        self.strata = [np.asarray(groups[key]) for key in sorted(groups)]

    def draws(self, n_boot: int, seed: int) -> np.ndarray:
        """(n_boot, speakers) multiplicities: each stratum's speakers drawn with replacement, as many as it has."""
        rng = np.random.default_rng(seed)
        weights = np.zeros((n_boot, len(self.speakers)), dtype=np.int64)
        for members in self.strata:
            weights[:, members] = rng.multinomial(len(members), np.full(len(members), 1 / len(members)), size=n_boot)
        return weights

    def uar(self, weights: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """UAR of the summed confusion of the speakers in `mask`, one per row of the (b, speakers) `weights`."""
        w = np.atleast_2d(weights).astype(np.float64)
        if mask is not None:
            w = w * mask[None, :]
        confusion = np.einsum("bs,sij->bij", w, self.counts)
        support = confusion.sum(axis=2)
        correct = np.einsum("bii->bi", confusion)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a draw with no clip of the mask: NaN, dropped later
            return np.nanmean(np.where(support > 0, correct / support, np.nan), axis=1)

    def column(self, name: str) -> np.ndarray:
        return self.info[name].to_numpy()


def interval(draws: np.ndarray, level: float = LEVEL) -> list[float | None]:
    """Percentile interval [low, high] of bootstrap draws (NaN draws ignored)."""
    draws = np.asarray(draws, dtype=np.float64)
    draws = draws[np.isfinite(draws)]
    if not draws.size:
        return [None, None]
    tail = (1 - level) / 2
    return [_round(np.quantile(draws, tail)), _round(np.quantile(draws, 1 - tail))]


def bootstrap(pred: pd.DataFrame, statistic: Callable[[SpeakerCounts, np.ndarray], np.ndarray], *,
              strata: Sequence[str] = ("corpus",), n_boot: int = N_BOOT, seed: int = 0,
              level: float = LEVEL) -> dict[str, Any]:
    """{value, ci} of `statistic(counts, weights)` on all speakers (weights of ones) and over speaker draws.

    `statistic` gets the SpeakerCounts and a (b, speakers) weight matrix and returns b values.
    """
    counts = SpeakerCounts(pred, strata)
    ones = np.ones((1, len(counts.speakers)), dtype=np.int64)
    value = statistic(counts, ones)[0]
    return {"value": _round(value), "ci": interval(statistic(counts, counts.draws(n_boot, seed)), level)}


def corpus_scores(pred: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> dict[str, Any]:
    """Per-corpus UAR, their mean (every corpus counts once) and the pooled UAR, each with a speaker CI.

    Every draw resamples the speakers of each corpus within that corpus, so the mean's interval
    carries every corpus's speaker variance. Returns {uar_by_corpus: {corpus: {uar, ci, speakers, n}},
    uar_corpus_mean: {uar, ci}, uar_pooled: {uar, ci}, bootstrap: {draws, level, unit, seed}}.
    """
    counts = SpeakerCounts(pred, ["corpus"])
    corpora = sorted(set(counts.column("corpus")))
    masks = {c: (counts.column("corpus") == c).astype(np.float64) for c in corpora}
    ones = np.ones((1, len(counts.speakers)), dtype=np.int64)
    draws = counts.draws(n_boot, seed)
    per = {c: (counts.uar(ones, masks[c])[0], counts.uar(draws, masks[c])) for c in corpora}
    n_clips = pred.groupby("corpus").size()
    mean_value = float(np.mean([v for v, _ in per.values()]))
    mean_draws = np.mean(np.stack([d for _, d in per.values()]), axis=0)
    return {
        "uar_by_corpus": {c: {"uar": _round(v), "ci": interval(d, level), "speakers": int(masks[c].sum()),
                              "n": int(n_clips[c])} for c, (v, d) in per.items()},
        "uar_corpus_mean": {"uar": _round(mean_value), "ci": interval(mean_draws, level)},
        "uar_pooled": {"uar": _round(counts.uar(ones)[0]), "ci": interval(counts.uar(draws), level)},
        "bootstrap": {"draws": int(n_boot), "level": level, "unit": "speaker", "strata": ["corpus"], "seed": int(seed)},
    }


def gender_scores(pred: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> dict[str, Any]:
    """Per-gender UAR with speaker CIs, and the female-minus-male gap with its CI.

    Draws resample speakers within (corpus, gender), so each corpus keeps its gender mix. `by_gender`
    pools all clips of a gender. The gap is taken WITHIN each corpus that has both female and male
    speakers, then averaged over those corpora: a pooled difference would mostly measure which
    corpora are single-gender (TESS all female, SAVEE all male). Returns {by_gender: {gender: {uar, ci,
    speakers, n}}, gender_gap: {female_minus_male, ci, corpora}} (the gap None without a mixed corpus).
    """
    _check(pred, ["gender"])
    counts = SpeakerCounts(pred, ["corpus", "gender"])
    ones = np.ones((1, len(counts.speakers)), dtype=np.int64)
    draws = counts.draws(n_boot, seed)
    gender, corpus = counts.column("gender"), counts.column("corpus")
    n_clips = pred.groupby("gender").size()
    by_gender = {}
    for g in sorted(set(gender)):
        mask = (gender == g).astype(np.float64)
        by_gender[g] = {"uar": _round(counts.uar(ones, mask)[0]), "ci": interval(counts.uar(draws, mask), level),
                        "speakers": int(mask.sum()), "n": int(n_clips[g])}
    mixed = sorted(c for c in set(corpus) if {"female", "male"} <= set(gender[corpus == c]))

    def gap(weights: np.ndarray) -> np.ndarray:
        diffs = [counts.uar(weights, ((corpus == c) & (gender == "female")).astype(np.float64))
                 - counts.uar(weights, ((corpus == c) & (gender == "male")).astype(np.float64)) for c in mixed]
        return np.mean(np.stack(diffs), axis=0)

    result: dict[str, Any] = {"by_gender": by_gender}
    if mixed:
        result["gender_gap"] = {"female_minus_male": _round(gap(ones)[0]), "ci": interval(gap(draws), level),
                                "corpora": mixed}
    else:
        result["gender_gap"] = {"female_minus_male": None, "ci": [None, None], "corpora": []}
    return result


def speaker_table(pred: pd.DataFrame) -> pd.DataFrame:
    """One row per speaker: corpus, gender, fold (when present), clips and UAR, in corpus/speaker order."""
    _check(pred)
    keys = [c for c in ("corpus", "gender", "fold") if c in pred.columns]
    rows = []
    for speaker, part in pred.groupby("speaker", sort=True):
        rows.append({"speaker": speaker, **{k: part[k].iloc[0] for k in keys}, "n": len(part),
                     "uar": _round(uar(part["actual"], part["predicted"])),
                     "accuracy": _round(float(np.mean(part["actual"].to_numpy() == part["predicted"].to_numpy())))})
    return pd.DataFrame(rows).sort_values(["corpus", "speaker"], kind="stable").reset_index(drop=True)
