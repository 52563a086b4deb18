"""Merge per-corpus manifests, drop duplicate audio, and split by speaker (no speaker in two splits)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ser.params import Settings, SplitParams

SPLITS = ("train", "val", "test")
_SPLIT = SplitParams()  # params.yaml `split:` defaults


def drop_duplicates(manifest: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the first of each set of identical files (same sha1, in corpus/path order); quarantine the rest."""
    ordered = manifest.sort_values(["corpus", "path"], kind="stable")
    first = ordered.groupby("sha1", sort=False)["utt_id"].transform("first")
    dup = ordered["utt_id"] != first
    quarantine = pd.DataFrame({
        "corpus": ordered.loc[dup, "corpus"],
        "path": ordered.loc[dup, "path"],
        "kind": "duplicate",
        "reason": "same audio (sha1) as " + first[dup],
    })
    return ordered[~dup].reset_index(drop=True), quarantine.reset_index(drop=True)


def _targets(n: int, ratios: dict[str, float], min_eval_speakers: int = 1) -> dict[str, int]:
    """Speakers per split by largest remainder, with at least one in each split whose ratio is positive.

    Then test and val (in that order, one speaker at a time) are raised to `min_eval_speakers`, taking
    from train only while train keeps at least half of the speakers: one held-out voice is an anecdote.
    """
    raw = {k: n * ratios.get(k, 0.0) for k in SPLITS}
    counts = {k: int(np.floor(v)) for k, v in raw.items()}
    for k in sorted(SPLITS, key=lambda k: raw[k] - counts[k], reverse=True)[: n - sum(counts.values())]:
        counts[k] += 1
    for k in SPLITS:
        if ratios.get(k, 0) > 0 and counts[k] == 0:
            donor = max(SPLITS, key=lambda s: counts[s])
            counts[donor] -= 1
            counts[k] += 1
    raised = True
    while raised:
        raised = False
        for k in ("test", "val"):
            if 0 < counts[k] < min_eval_speakers and ratios.get(k, 0) > 0 and 2 * (counts["train"] - 1) >= n:
                counts["train"] -= 1
                counts[k] += 1
                raised = True
    return counts


def _interleave(speakers: pd.DataFrame, rng: np.random.Generator) -> list[str]:
    """Speakers ordered round-robin over (corpus, gender) strata, shuffled within each stratum."""
    strata = []
    for _, group in speakers.groupby(["corpus", "gender"], sort=True):
        ids = group["speaker"].tolist()
        rng.shuffle(ids)
        strata.append(ids)
    strata.sort(key=len, reverse=True)
    order = []
    for i in range(max((len(s) for s in strata), default=0)):
        order.extend(s[i] for s in strata if i < len(s))
    return order


def speaker_split(manifest: pd.DataFrame, ratios: dict[str, float], seed: int,
                  min_eval_speakers: int = 1) -> pd.Series:
    """Assign train/val/test per speaker, spreading corpora and genders over the splits.

    Splits get speaker counts in proportion to `ratios` (val and test at least `min_eval_speakers`
    where train keeps half, see `_targets`); each speaker goes to the split furthest behind its share,
    walking speakers interleaved by (corpus, gender).
    """
    speakers = manifest.groupby("speaker", sort=True).agg(corpus=("corpus", "first"), gender=("gender", "first")).reset_index()
    needed = sum(1 for k in SPLITS if ratios.get(k, 0) > 0)
    if len(speakers) < needed:
        raise ValueError(f"a speaker-independent split needs at least {needed} speakers; found {len(speakers)} "
                         f"({', '.join(speakers['speaker'])})")
    order = _interleave(speakers, np.random.default_rng(seed))
    targets = _targets(len(order), ratios, min_eval_speakers)
    assigned = dict.fromkeys(SPLITS, 0)
    split_of = {}
    for i, speaker in enumerate(order, start=1):
        open_splits = [k for k in SPLITS if assigned[k] < targets[k]]
        k = max(open_splits, key=lambda s: targets[s] * i / len(order) - assigned[s])
        split_of[speaker] = k
        assigned[k] += 1
    return manifest["speaker"].map(split_of).rename("split")


def per_corpus_split(manifest: pd.DataFrame, ratios: dict[str, float], seed: int,
                     min_eval_speakers: int = 2) -> pd.Series:
    """Split each corpus by its own speakers, so adding a corpus never moves another corpus's speakers.

    Val and test get at least `min_eval_speakers` of a corpus that has enough (CREMA-D's 60: 42/9/9,
    eight RAVDESS actors: 4/2/2). Corpora with too few speakers to give every split one are pooled and
    split together, under the same minimum; a pool still too small for three splits goes to train and
    test (a lone speaker to train) rather than failing.
    """
    needed = sum(1 for k in SPLITS if ratios.get(k, 0) > 0)
    n_speakers = manifest.groupby("corpus")["speaker"].nunique()
    small = manifest["corpus"].isin(n_speakers.index[n_speakers < needed])
    split = pd.Series(index=manifest.index, dtype=object, name="split")
    for corpus, part in manifest[~small].groupby("corpus", sort=True):
        split[part.index] = speaker_split(part, ratios, seed, min_eval_speakers)
    if small.any():
        pool = manifest[small]
        n_pool = pool["speaker"].nunique()
        if n_pool < needed:
            # Too few even pooled (e.g. EmoDB's two speakers beside RAVDESS): fill train, then test, never val.
            ratios = {"train": ratios["train"], "test": ratios.get("test", 0.0) if n_pool > 1 else 0.0}
        split[small] = speaker_split(pool, ratios, seed, min_eval_speakers)
    return split


def cross_corpus_split(manifest: pd.DataFrame, test_corpora: Sequence[str], ratios: dict[str, float], seed: int) -> pd.Series:
    """Test on whole corpora; train/val by speaker from the others (val keeps its ratio relative to train)."""
    is_test = manifest["corpus"].isin(list(test_corpora))
    rest = manifest[~is_test]
    total = ratios["train"] + ratios.get("val", 0.0)
    inner = {"train": ratios["train"] / total, "val": ratios.get("val", 0.0) / total, "test": 0.0}
    split = pd.Series("test", index=manifest.index, name="split")
    split[~is_test] = speaker_split(rest, inner, seed)
    return split


def loso_folds(manifest: pd.DataFrame) -> pd.Series:
    """Leave-one-speaker-out fold index: one fold per speaker, numbered in sorted speaker order."""
    codes = {s: i for i, s in enumerate(sorted(manifest["speaker"].unique()))}
    return manifest["speaker"].map(codes).astype("int64").rename("fold")


def build_manifest(manifests: Sequence[pd.DataFrame], *, protocol: str, ratios: dict[str, float],
                   test_corpora: Sequence[str] = (), seed: int = Settings.model_fields["seed"].default,
                   dedupe: bool = _SPLIT.drop_duplicates,
                   min_eval_speakers: int = _SPLIT.min_eval_speakers) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merged manifest with `split` and `fold`, and the quarantine rows for dropped duplicates."""
    merged = pd.concat(list(manifests), ignore_index=True)
    if merged.empty:
        raise ValueError("no usable utterance in any corpus: see the quarantine files for why")
    dupes_cols = ["corpus", "path", "kind", "reason"]
    if dedupe:
        merged, dupes = drop_duplicates(merged)
    else:
        merged, dupes = merged.sort_values(["corpus", "path"]).reset_index(drop=True), pd.DataFrame(columns=dupes_cols)
    if protocol == "cross_corpus":
        merged["split"] = cross_corpus_split(merged, test_corpora, ratios, seed)
    else:
        merged["split"] = per_corpus_split(merged, ratios, seed, min_eval_speakers)
    merged["fold"] = loso_folds(merged)
    return merged, dupes
