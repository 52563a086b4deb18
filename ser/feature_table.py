"""Turn manifest rows into feature tables: plan stable chunks, extract one chunk, write it atomically.

A chunk is a few hundred utterances of one corpus and split; its part file records a key (feature,
audio and augmentation params plus the rows' ids and sha1s), so a rerun skips finished chunks and
an interrupted run resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ser.audio import AudioError, load_audio
from ser.augment import augment_copy, build_augmenter, n_copies
from ser.features import FeatureConfig, extract_all, feature_config, pooled_feature_names
from ser.io import atomic_path
from ser.log import get_logger
from ser.params import AudioParams, Settings

KEY_COLUMNS = ["utt_id", "corpus", "speaker", "gender", "emotion", "split", "fold", "augmented", "copy", "source"]
# corpus and split live in the hive partition path (corpus=X/split=Y), not inside the files
PARTITION_COLUMNS = ["corpus", "split"]


@dataclass(frozen=True)
class Chunk:
    """One unit of work: rows of one (corpus, split), in utt_id order."""

    corpus: str
    split: str
    index: int
    rows: tuple[tuple[str, str, str], ...]  # (utt_id, path relative to the corpus root, sha1)
    key: str

    @property
    def name(self) -> str:
        return f"corpus={self.corpus}/split={self.split}/part-{self.index:05d}.parquet"


@dataclass
class FeatureSettings:
    """Everything that decides a chunk's content (the chunk key hashes it)."""

    features: FeatureConfig
    audio: dict[str, Any] = field(default_factory=lambda: AudioParams().model_dump())
    augment: dict[str, Any] = field(default_factory=dict)
    seed: int = Settings.model_fields["seed"].default

    @classmethod
    def from_params(cls, params: Settings | dict[str, Any]) -> FeatureSettings:
        """From the typed params (a dict of sections is validated into them first)."""
        p = Settings.coerce(params)
        return cls(features=feature_config(p), audio=p.audio.model_dump(), augment=p.augment.as_config(),
                   seed=p.seed)

    def signature(self, split: str) -> dict[str, Any]:
        """What a chunk of `split` depends on: augmentation only matters for train."""
        return {"features": self.features.config_hash(), "audio": self.audio, "seed": self.seed,
                "augment": self.augment if split == "train" else None}


def plan_chunks(manifest: pd.DataFrame, settings: FeatureSettings, chunk_size: int) -> list[Chunk]:
    """Stable chunks per (corpus, split): adding rows to one corpus never renames another's chunks."""
    chunks = []
    for (corpus, split), part in manifest.sort_values("utt_id").groupby(["corpus", "split"], sort=True):
        sig = json.dumps(settings.signature(split), sort_keys=True, default=str)
        records = list(zip(part["utt_id"], part["path"], part["sha1"]))
        for i in range(0, len(records), chunk_size):
            rows = tuple(records[i:i + chunk_size])
            key = hashlib.sha1(json.dumps([sig, rows]).encode()).hexdigest()
            chunks.append(Chunk(str(corpus), str(split), i // chunk_size, rows, key))
    return chunks


def chunk_done(chunk: Chunk, out_dir: Path) -> bool:
    """Whether `chunk`'s part file exists with the same key (finished by an earlier run)."""
    path = out_dir / "pooled" / chunk.name
    try:
        meta = pq.read_schema(path).metadata or {}
    except (FileNotFoundError, OSError, pa.ArrowInvalid):
        return False
    return meta.get(b"ser.chunk_key") == chunk.key.encode() and (out_dir / "logmel" / chunk.name).is_file()


class FileProgress:
    """Logs a chunk's progress every `every_files` files or `every_s` seconds, whichever comes first, and
    the first file on its own (it carries the warm-up: numba compiling librosa, openSMILE loading)."""

    def __init__(self, label: str, total: int, every_files: int = 25, every_s: float = 10.0,
                 clock: Any = time.perf_counter, log: Any = None) -> None:
        self.label, self.total, self.every_files, self.every_s = label, total, every_files, every_s
        self.clock, self.log = clock, log or get_logger(__name__).info
        self.start = self.last_t = clock()
        self.done = self.last_n = 0

    def step(self, rows: int) -> None:
        self.done += 1
        now = self.clock()
        if self.done == 1 or self.done == self.total or self.done - self.last_n >= self.every_files \
                or now - self.last_t >= self.every_s:
            rate = self.done / max(now - self.start, 1e-9)
            self.log(f"features {self.label}: {self.done}/{self.total} files, {rows} rows, "
                     f"{now - self.start:.1f} s ({rate:.1f} files/s)")
            self.last_n, self.last_t = self.done, now


def extract_chunk(chunk: Chunk, manifest: pd.DataFrame, roots: dict[str, Path],
                  settings: FeatureSettings) -> tuple[pd.DataFrame, pd.DataFrame, list[dict[str, str]]]:
    """Features of a chunk's utterances (plus augmented copies for train): pooled, log-mel, quarantine."""
    cfg = settings.features
    names = pooled_feature_names(cfg)
    info = manifest.set_index("utt_id")
    copies = n_copies(settings.augment) if chunk.split == "train" else 0
    augmenter = build_augmenter(settings.augment) if copies else None
    sr = settings.audio["sample_rate"]
    keys, pooled, logmels, frames, quarantine = [], [], [], [], []
    progress = FileProgress(chunk.name.removesuffix(".parquet"), len(chunk.rows))
    for utt_id, rel, _ in chunk.rows:
        row = info.loc[utt_id]
        try:
            audio = load_audio(roots[chunk.corpus] / rel, sr, trim_db=settings.audio["trim_db"],
                               normalize=settings.audio["normalize"],
                               target_rms_dbfs=settings.audio["target_rms_dbfs"],
                               min_duration_s=settings.audio["min_duration_s"])
        except AudioError as err:
            quarantine.append({"corpus": chunk.corpus, "path": rel, "kind": "audio", "reason": str(err)})
            progress.step(len(keys))
            continue
        for copy in range(copies + 1):
            signal = audio if copy == 0 else augment_copy(audio, sr, augmenter, utt_id=utt_id, copy=copy,
                                                          seed=settings.seed)
            vector, seq, n = extract_all(signal, cfg)
            keys.append({
                "utt_id": utt_id if copy == 0 else f"{utt_id}#aug{copy}", "corpus": chunk.corpus,
                "speaker": row["speaker"], "gender": row["gender"], "emotion": row["emotion"],
                "split": chunk.split, "fold": int(row["fold"]), "augmented": copy > 0, "copy": copy,
                "source": utt_id,
            })
            pooled.append(vector)
            logmels.append(seq.reshape(-1))
            frames.append(n)
        progress.step(len(keys))
    key_df = pd.DataFrame(keys, columns=KEY_COLUMNS)
    matrix = np.vstack(pooled).astype(np.float32) if pooled else np.zeros((0, len(names)), np.float32)
    pooled_df = pd.concat([key_df, pd.DataFrame(matrix, columns=names)], axis=1)
    logmel_df = key_df.assign(n_frames=np.asarray(frames, dtype=np.int32), logmel=logmels)
    return pooled_df, logmel_df, quarantine


def _write(df: pd.DataFrame, path: Path, metadata: dict[str, str], logmel_width: int | None = None) -> None:
    table = pa.Table.from_pandas(df.drop(columns=PARTITION_COLUMNS), preserve_index=False)
    if logmel_width is not None:
        values = pa.array(np.concatenate(df["logmel"].to_list()) if len(df) else np.zeros(0, np.float32),
                          type=pa.float32())
        col = pa.FixedSizeListArray.from_arrays(values, logmel_width)
        table = table.set_column(table.schema.get_field_index("logmel"), "logmel", col)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           **{f"ser.{k}".encode(): v.encode() for k, v in metadata.items()}})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=max(len(df), 1))


def run_chunk(chunk: Chunk, manifest: pd.DataFrame, roots: dict[str, Path], settings: FeatureSettings,
              out_dir: Path) -> dict[str, Any]:
    """Extract one chunk and write its pooled and log-mel part files (log-mel first, pooled last as the marker)."""
    start = time.perf_counter()
    pooled_df, logmel_df, quarantine = extract_chunk(chunk, manifest, roots, settings)
    cfg = settings.features
    meta = {"chunk_key": chunk.key, "feature_hash": cfg.config_hash(),
            "feature_params": json.dumps(cfg.to_dict(), sort_keys=True),
            "quarantine": json.dumps(quarantine)}
    _write(logmel_df, out_dir / "logmel" / chunk.name,
           {**meta, "logmel_shape": json.dumps([cfg.logmel_frames, cfg.n_mels])},
           logmel_width=cfg.logmel_frames * cfg.n_mels)
    _write(pooled_df, out_dir / "pooled" / chunk.name, meta)
    return {"chunk": chunk.name, "rows": len(pooled_df), "utterances": len(chunk.rows),
            "quarantined": len(quarantine), "seconds": time.perf_counter() - start}


def stale_parts(out_dir: Path, chunks: list[Chunk]) -> list[Path]:
    """Part files under out_dir that no planned chunk owns (e.g. after a corpus shrank)."""
    wanted = {c.name for c in chunks}
    found = []
    for kind in ("pooled", "logmel"):
        base = out_dir / kind
        if base.is_dir():
            found += [p for p in base.rglob("*.parquet") if p.relative_to(base).as_posix() not in wanted]
    return found


def stale_temp_files(out_dir: Path, corpus: str | None = None) -> list[Path]:
    """Temp files (`.part-NNNNN.parquet.<random>.tmp`, see `ser.io.atomic_path`) that a killed run left
    in the pooled and log-mel tables; only under `corpus=<corpus>/` when a corpus is given.

    Readers skip them (dot-files are not part of a dataset), but they would linger in the output and
    in DVC's cache, so a new run sweeps them before it starts.
    """
    found: list[Path] = []
    for kind in ("pooled", "logmel"):
        base = out_dir / kind if corpus is None else out_dir / kind / f"corpus={corpus}"
        if base.is_dir():
            found += [p for p in base.rglob(".*.tmp") if p.is_file()]
    return sorted(found)


def chunk_quarantine(out_dir: Path, chunks: list[Chunk]) -> pd.DataFrame:
    """Quarantine rows recorded in the finished chunks' metadata."""
    rows = []
    for chunk in chunks:
        meta = pq.read_schema(out_dir / "pooled" / chunk.name).metadata or {}
        rows += json.loads(meta.get(b"ser.quarantine", b"[]"))
    return pd.DataFrame(rows, columns=["corpus", "path", "kind", "reason"])


def check_feature_hash(path: Path | str, cfg: FeatureConfig, corpora: list[str] | None = None) -> None:
    """Refuse a feature table whose part files were extracted with other feature params than `cfg`.

    The hash each part records must match; only fused openSMILE columns may be extra (a config without
    fusion reads the same columns of a fused table).
    """
    import pyarrow.dataset as ds

    want = cfg.config_hash()
    dataset = ds.dataset(path, format="parquet", partitioning="hive")
    where = None if corpora is None else ds.field("corpus").isin(sorted(corpora))
    for fragment in dataset.get_fragments(filter=where):
        meta = fragment.physical_schema.metadata or {}
        got = meta.get(b"ser.feature_hash", b"").decode()
        if got != want and cfg.opensmile is None and b"ser.feature_params" in meta:
            theirs = {**json.loads(meta[b"ser.feature_params"]), "opensmile": None}
            if FeatureConfig.from_params(theirs).config_hash() == want:
                continue
        if got != want:
            raise ValueError(f"{fragment.path} holds features of other params (feature hash {got or 'none'}, "
                             f"params.yaml gives {want}): rerun the features stage (dvc repro)")


def read_features(path: Path | str, corpus: str | None = None, split: str | None = None,
                  columns: list[str] | None = None, corpora: list[str] | None = None) -> pd.DataFrame:
    """Read a hive-partitioned feature table (pooled or logmel), restoring corpus and split as strings.

    `corpus`/`split` keep one partition; `corpora` keeps the partitions of those corpora only.
    """
    import pyarrow.dataset as ds

    dataset = ds.dataset(path, format="parquet", partitioning="hive")
    condition = None
    terms = [ds.field(name) == value for name, value in (("corpus", corpus), ("split", split)) if value is not None]
    if corpora is not None:
        terms.append(ds.field("corpus").isin(sorted(corpora)))
    for term in terms:
        condition = term if condition is None else condition & term
    table = dataset.to_table(filter=condition, columns=columns)
    df = table.to_pandas()
    for name in PARTITION_COLUMNS:
        if name in df.columns:
            df[name] = df[name].astype(str)
    order = [c for c in KEY_COLUMNS if c in df.columns]
    return df[order + [c for c in df.columns if c not in order]].sort_values("utt_id", kind="stable").reset_index(drop=True)


def manifest_features(path: Path | str, manifest: pd.DataFrame, columns: list[str] | None = None) -> pd.DataFrame:
    """The feature rows of exactly the manifest's utterances (originals and their augmented copies).

    Partitions of corpora the manifest does not hold (a corpus no longer configured, such as the demo
    after a switch to real corpora) are never read, and rows whose source utterance left the manifest
    are dropped; speaker, gender, emotion, split and fold come from the manifest, the one truth.
    """
    df = read_features(path, columns=columns, corpora=sorted(manifest["corpus"].astype(str).unique()))
    truth = manifest.set_index("utt_id")
    df = df[df["source"].isin(truth.index)].reset_index(drop=True)
    for col in ("speaker", "gender", "emotion", "split", "fold"):
        if col in df.columns and col in truth.columns:
            df[col] = truth.loc[df["source"], col].to_numpy()
    return df
