"""Ingest one corpus from its original layout into a manifest, and quarantine what cannot be used."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from ser import EMOTIONS, corpora
from ser.audio import AudioError, probe, sha1_file
from ser.corpora import Quarantine

MANIFEST_COLUMNS = [
    "utt_id", "path", "corpus", "speaker", "gender", "language", "raw_label", "emotion",
    "duration_s", "sample_rate", "channels", "sha1", "meta",
]
QUARANTINE_COLUMNS = ["corpus", "path", "kind", "reason"]


@dataclass
class IngestResult:
    manifest: pd.DataFrame
    quarantine: pd.DataFrame

    @property
    def files(self) -> int:
        return len(self.manifest) + len(self.quarantine)


def _row(corpus: corpora.Corpus, name: str, fmt: str, path: Path, label_map: dict[str, str | None],
         min_duration_s: float, max_duration_s: float) -> dict[str, Any]:
    rel = PurePosixPath(path.relative_to(corpus.root).as_posix())
    try:
        utt = corpus.parse(rel)
        if utt.raw_label not in label_map:
            raise Quarantine("label", f"raw label {utt.raw_label!r} is not in labels.{fmt}")
        emotion = label_map[utt.raw_label]
        if emotion is None:
            raise Quarantine("label", f"raw label {utt.raw_label!r} maps to no emotion (labels.{fmt}.{utt.raw_label}: null)")
        try:
            info = probe(path)
        except AudioError as err:
            raise Quarantine("audio", str(err)) from None
        if info.missing_bytes:
            raise Quarantine("audio", f"truncated: the WAV header declares {info.missing_bytes} more data bytes "
                                      f"than the file holds (only {info.duration_s:.3f} s readable; a cut-off copy?)")
        if not min_duration_s <= info.duration_s <= max_duration_s:
            raise Quarantine("audio", f"duration {info.duration_s:.3f} s outside "
                                      f"[{min_duration_s}, {max_duration_s}] (ingest.*_duration_s)")
        try:
            digest = sha1_file(path)
        except OSError as err:
            raise Quarantine("audio", f"cannot read {rel}: {err}") from None
    except Quarantine as q:
        return {"corpus": name, "path": str(rel), "kind": q.kind, "reason": q.reason}
    return {
        "utt_id": f"{name}/{rel}", "path": str(rel), "corpus": name,
        "speaker": f"{name}:{utt.speaker}", "gender": utt.gender,
        "language": utt.language or corpus.language, "raw_label": utt.raw_label, "emotion": emotion,
        "duration_s": float(info.duration_s), "sample_rate": int(info.sample_rate),
        "channels": int(info.channels), "sha1": digest,
        "meta": json.dumps(utt.extra, sort_keys=True),
    }


def ingest_corpus(
    root: Path | str,
    fmt: str,
    label_map: dict[str, str | None],
    *,
    name: str | None = None,
    options: dict[str, Any] | None = None,
    min_duration_s: float = 0.1,
    max_duration_s: float = 60.0,
    workers: int = 2,
    on_file: Callable[[], None] | None = None,
) -> IngestResult:
    """Read every audio file under `root` with the `fmt` parser; unusable files become quarantine rows.

    Raises FileNotFoundError for a missing root and KeyError for an unknown format.
    """
    name = name or fmt
    corpus = corpora.get(fmt)(root, options)
    bad = {raw: e for raw, e in label_map.items() if e is not None and e not in EMOTIONS}
    if bad:
        raise ValueError(f"label map for {name} maps to unknown emotions: {bad}")
    paths = list(corpus.files())

    def one(path: Path) -> dict[str, Any]:
        row = _row(corpus, name, fmt, path, label_map, min_duration_s, max_duration_s)
        if on_file:
            on_file()
        return row

    with ThreadPoolExecutor(max_workers=workers) as pool:
        rows = list(pool.map(one, paths))
    kept = [r for r in rows if "utt_id" in r]
    quarantined = [r for r in rows if "utt_id" not in r]
    return IngestResult(
        manifest=pd.DataFrame(kept, columns=MANIFEST_COLUMNS),
        quarantine=pd.DataFrame(quarantined, columns=QUARANTINE_COLUMNS),
    )


def concat(results: Iterable[IngestResult]) -> IngestResult:
    results = list(results)
    return IngestResult(
        manifest=pd.concat([r.manifest for r in results] or [pd.DataFrame(columns=MANIFEST_COLUMNS)], ignore_index=True),
        quarantine=pd.concat([r.quarantine for r in results] or [pd.DataFrame(columns=QUARANTINE_COLUMNS)], ignore_index=True),
    )


def summary(result: IngestResult) -> dict[str, Any]:
    """Counts per corpus: files seen, kept, quarantined by kind, kept per emotion."""
    out: dict[str, Any] = {}
    names = sorted(set(result.manifest["corpus"]) | set(result.quarantine["corpus"]))
    for name in names:
        m = result.manifest[result.manifest["corpus"] == name]
        q = result.quarantine[result.quarantine["corpus"] == name]
        out[name] = {
            "files": len(m) + len(q),
            "kept": len(m),
            "quarantined": {str(k): int(v) for k, v in q["kind"].value_counts().sort_index().items()},
            "emotions": {e: int((m["emotion"] == e).sum()) for e in EMOTIONS},
            "speakers": int(m["speaker"].nunique()),
        }
    return out
