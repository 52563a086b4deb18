"""Predict emotions for audio with a model artefact; a bad file is a row with an error, not a crash.

Three granularities share one path (decode -> features -> the artefact's scaler -> model):

* `predict_array` / `predict_arrays`: clips already decoded (an upload, a microphone window);
* `predict_files`: one row per file;
* `predict_segments` / `predict_files_segments`: sliding windows over long recordings, one row per
  window (a timeline).

Segments: a recording of N samples with window W and hop H gets windows starting at 0, H, 2H, ...
while they fit, plus one final window ending exactly at the end when the hop grid leaves a tail
uncovered -- so every sample is covered and there are ``1 + ceil((N - W) / H)`` windows (one
window, the whole recording, when N <= W). Each window is normalised on its own, as a training clip
was (the artefact's `audio.normalize`); silence trimming is not applied to windows (it would change
their length and their start/end times).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ser import EMOTIONS
from ser.artifact import Artifact
from ser.audio import AudioError, load_audio, probe
from ser.corpora.base import AUDIO_EXTENSIONS
from ser.params import parse_emotions
from ser.predictor import Predictor, check_proba
from ser.speaker_norm import RunningStats
from ser.vad import NoSpeech, check_rate, detect_speech

PROB_COLUMNS = [f"prob_{e}" for e in EMOTIONS]
RESULT_COLUMNS = ["emotion", "confidence", *PROB_COLUMNS]
SEGMENT_COLUMNS = ["path", "segment", "start_s", "end_s", *RESULT_COLUMNS, "status", "error"]
FILE_COLUMNS = ["path", *RESULT_COLUMNS, "group", "normalised_by", "status", "error"]


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Files as given, and every audio file under each folder (sorted)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file())
        else:
            out.append(p)
    return out


def audio_options(artifact: Artifact) -> dict[str, Any]:
    """Keyword arguments for `ser.audio.load_audio` / `decode` that reproduce the artefact's training audio."""
    a = artifact.audio
    return {"trim_db": a.get("trim_db"), "normalize": a.get("normalize", "none"),
            "target_rms_dbfs": a.get("target_rms_dbfs", -23.0)}


def normalise_window(artifact: Artifact, audio: np.ndarray) -> np.ndarray:
    """Peak/RMS-normalise one window as `load_audio` normalised each training clip (no trimming)."""
    from ser.audio import _normalise

    opts = audio_options(artifact)
    return np.ascontiguousarray(_normalise(np.asarray(audio, np.float32), opts["normalize"], opts["target_rms_dbfs"]),
                                dtype=np.float32)


def predictor(artifact: Artifact) -> Predictor:
    """The artefact's shared predictor (ser.predictor): one per loaded artefact, whoever asks."""
    return Predictor.of(artifact)


def raw_features(artifact: Artifact, audio: np.ndarray) -> np.ndarray:
    """The model's unscaled input for one clip: (d,) pooled or (frames, mels) log-mel. Only the needed family is computed."""
    return predictor(artifact).raw(audio)


def features_for(artifact: Artifact, audio: np.ndarray) -> np.ndarray:
    """The model's input for one clip, standardised as in training: (1, d) or (1, frames, mels)."""
    return artifact.scaler.transform(raw_features(artifact, audio)[None])


def model_proba(artifact: Artifact, x: np.ndarray) -> np.ndarray:
    """(n, 7) probabilities for scaled inputs `x` (see `Predictor.model_proba`)."""
    return predictor(artifact).model_proba(x)


def predict_arrays(artifact: Artifact, clips: Sequence[np.ndarray], emotions: Sequence[str] | None = None
                   ) -> np.ndarray:
    """(n, 7) probabilities for decoded clips at the artefact's sample rate, in one model call (no speech check:
    the caller decides what the clips are); restricted to `emotions` (ser.predictor.mask_proba) when given."""
    if not len(clips):
        return np.zeros((0, len(EMOTIONS)))
    p = predictor(artifact)
    return p.proba(np.stack([p.raw(c) for c in clips]), emotions=parse_emotions(emotions))[0]


def predict_raw(artifact: Artifact, raw: np.ndarray, stats: RunningStats | None = None) -> np.ndarray:
    """(n, 7) for raw feature rows of one group: standardised by `stats` (the group's running statistics:
    a live stream, an API client's clips) when the model was trained per speaker and `stats` holds at
    least `min_group_size` clips, else by the training set's global statistics."""
    return predictor(artifact).proba(raw, stats)[0]


def predict_array(artifact: Artifact, audio: np.ndarray, emotions: Sequence[str] | None = None) -> np.ndarray:
    """(7,) probabilities for one decoded clip (mono float32 at the artefact's sample rate)."""
    return predict_arrays(artifact, [audio], emotions)[0]


def result_row(proba: np.ndarray) -> dict[str, Any]:
    """emotion, confidence and prob_<emotion> x7 for one probability vector."""
    proba = np.asarray(proba, dtype=np.float64)
    return {"emotion": EMOTIONS[int(proba.argmax())], "confidence": float(proba.max()),
            **{c: float(p) for c, p in zip(PROB_COLUMNS, proba)}}


def _error_row(err: Exception) -> dict[str, Any]:
    return {"emotion": None, "confidence": None, **dict.fromkeys(PROB_COLUMNS), "status": _status(err),
            "error": str(err)}


def _status(err: Exception | None) -> str:
    """`ok`, `no_speech` (silence, a tone, noise, a sample rate under the floor) or `error` (unreadable audio)."""
    return "ok" if err is None else "no_speech" if isinstance(err, NoSpeech) else "error"


def predict_files(artifact: Artifact, paths: Iterable[Path | str], on_file: Callable[[], None] | None = None,
                  group_by: str = "auto", emotions: Sequence[str] | None = None, workers: int = 1) -> pd.DataFrame:
    """One row per file: path, emotion, confidence, prob_<emotion> x7, group, normalised_by, status, error.

    `status` is `ok`, `no_speech` (the file holds no detectable voice, or its sample rate is under the
    8 kHz floor: no emotion is given) or `error` (unreadable audio); `error` says why.
    `group_by` (see ser.grouping) says which files share a voice; a model trained with per-speaker
    normalisation standardises each group of at least `min_group_size` files with speech by the group's
    own statistics (`normalised_by` = "group"), others by the training set's ("global"). `emotions` restricts
    the predictions to that set (ser.predictor.mask_proba: the other columns are 0); ValueError for an unknown
    name. `workers` > 1 computes the features in that many processes (`iter_file_rows`, which streams).
    """
    rows = iter_file_rows(artifact, paths, on_file=on_file, group_by=group_by, emotions=emotions, workers=workers)
    return pd.DataFrame(list(rows), columns=FILE_COLUMNS)


CHUNK_FILES = 16


def chunk_size_for(artifact: Artifact) -> int:
    """Files per worker task: a few encoder batches (fewer tasks cost less; smaller ones balance better)."""
    enc = artifact.features.encoder
    return max(CHUNK_FILES, enc.batch_size if enc is not None else 1)


def iter_file_rows(artifact: Artifact, paths: Iterable[Path | str], on_file: Callable[[], None] | None = None,
                   group_by: str = "auto", emotions: Sequence[str] | None = None, workers: int = 1,
                   chunk_size: int | None = None) -> Iterator[dict[str, Any]]:
    """`predict_files`'s rows, yielded in file order as soon as they are known, never all held at once.

    Files are taken group by group (ser.grouping) in chunks of `chunk_size`; workers (ser.predict_pool)
    decode them, gate them for speech and compute their raw features; here each group is scaled and scored
    as soon as its last file is in (a group's statistics need all its rows; files without a group are
    scored chunk by chunk). Memory follows the largest group and the chunks in flight, not the folder,
    as long as each group's files come together in the listing (a folder's sorted files do).
    """
    from ser.grouping import group_keys
    from ser.predict_pool import featurise_chunks

    allowed = parse_emotions(emotions)
    p = predictor(artifact)
    files = expand_paths(paths)
    keys = group_keys(files, group_by)
    first: dict[str | None, int] = {}
    for key in keys:
        first.setdefault(key, len(first))
    order = sorted(range(len(files)), key=lambda i: first[keys[i]])  # stable: file order within a group
    size = chunk_size or chunk_size_for(artifact)
    chunks = [order[i:i + size] for i in range(0, len(order), size)]
    left = Counter(keys)  # files of each group not yet featurised
    waiting: dict[str | None, list[tuple[int, np.ndarray]]] = {}
    done: dict[int, dict[str, Any]] = {}
    next_row = 0

    def score(key: str | None, items: list[tuple[int, np.ndarray]]) -> None:
        proba, own = p.proba_group([raw for _, raw in items], key, allowed)
        for (i, _), pr in zip(items, proba):
            done[i] = {"path": str(files[i]), **result_row(pr), "group": key,
                       "normalised_by": "group" if own else "global", "status": "ok", "error": ""}

    for n, results in featurise_chunks(p.featuriser(), [[files[i] for i in c] for c in chunks], workers):
        ungrouped = []
        for i, res in zip(chunks[n], results):
            key = keys[i]
            left[key] -= 1
            if res.raw is None:
                done[i] = {"path": str(files[i]), "emotion": None, "confidence": None, **dict.fromkeys(PROB_COLUMNS),
                           "group": key, "normalised_by": None, "status": res.status, "error": res.error}
            elif key is None:
                ungrouped.append((i, res.raw))
            else:
                waiting.setdefault(key, []).append((i, res.raw))
            if key is not None and not left[key] and waiting.get(key):
                score(key, waiting.pop(key))
            if on_file:
                on_file()
        if ungrouped:
            score(None, ungrouped)
        while next_row in done:
            yield done.pop(next_row)
            next_row += 1


# -- sliding windows ---------------------------------------------------------------------------------


def segment_bounds(n_samples: int, sample_rate: int, segment_s: float, hop_s: float | None = None
                   ) -> list[tuple[int, int]]:
    """(start, end) sample indices of the windows over `n_samples` (see the module docstring)."""
    if not segment_s or segment_s <= 0 or not math.isfinite(segment_s):
        raise ValueError(f"segment length must be a positive number of seconds, got {segment_s!r}")
    hop_s = segment_s if hop_s is None else hop_s
    if hop_s <= 0 or not math.isfinite(hop_s):
        raise ValueError(f"hop must be a positive number of seconds, got {hop_s!r}")
    win = max(1, int(round(segment_s * sample_rate)))
    hop = max(1, int(round(hop_s * sample_rate)))
    if n_samples <= 0:
        return []
    if n_samples <= win:
        return [(0, n_samples)]
    bounds = [(s, s + win) for s in range(0, n_samples - win + 1, hop)]
    if bounds[-1][1] < n_samples:
        bounds.append((n_samples - win, n_samples))
    return bounds


def n_segments(n_samples: int, sample_rate: int, segment_s: float, hop_s: float | None = None) -> int:
    """How many windows `segment_bounds` gives: 1 + ceil((N - W) / H), or 1 when N <= W."""
    return len(segment_bounds(n_samples, sample_rate, segment_s, hop_s))


def predict_segments(artifact: Artifact, audio: np.ndarray, segment_s: float, hop_s: float | None = None,
                     group: bool = True, emotions: Sequence[str] | None = None) -> pd.DataFrame:
    """A timeline: one row per window -- segment, start_s, end_s, emotion, confidence, prob_<emotion> x7, status.

    `audio` is the whole recording, decoded at the artefact's sample rate and NOT normalised (each
    window is normalised on its own). A window without detectable voice gets status `no_speech` and
    no emotion. With `group`, the recording's windows with speech are one group: a model trained per
    speaker standardises them by their own statistics when there are enough of them. `emotions`: as in
    `predict_files`.
    """
    allowed = parse_emotions(emotions)
    p = predictor(artifact)
    sr = p.sample_rate
    columns = ["segment", "start_s", "end_s", *RESULT_COLUMNS, "status"]
    bounds = segment_bounds(len(audio), sr, segment_s, hop_s)
    if not bounds:
        return pd.DataFrame(columns=columns)
    voiced = [detect_speech(audio[s:e], sr, p.gate).speech for s, e in bounds]
    raw = [p.raw(normalise_window(artifact, audio[s:e])) for (s, e), v in zip(bounds, voiced) if v]
    proba = iter(p.proba_group(raw, "recording" if group else None, allowed)[0] if raw else [])
    rows = [{"segment": i, "start_s": round(s / sr, 6), "end_s": round(e / sr, 6),
             **(result_row(next(proba)) if v else {k: None for k in RESULT_COLUMNS}),
             "status": "ok" if v else "no_speech"}
            for i, ((s, e), v) in enumerate(zip(bounds, voiced))]
    return pd.DataFrame(rows, columns=columns)


def predict_files_segments(artifact: Artifact, paths: Iterable[Path | str], segment_s: float,
                           hop_s: float | None = None, on_file: Callable[[], None] | None = None,
                           group: bool = True, emotions: Sequence[str] | None = None) -> pd.DataFrame:
    """`predict_segments` for each file, stacked: path + the timeline columns + status + error (one row for a
    bad file, or a file whose sample rate is under the floor)."""
    segment_bounds(1, 1, segment_s, hop_s)  # bad window arguments fail here, not as an error row per file
    emotions = parse_emotions(emotions)  # and so do unknown emotions
    frames = []
    sr = artifact.features.sample_rate
    for path in expand_paths(paths):
        try:
            check_rate(probe(path).sample_rate, predictor(artifact).gate)
            audio = load_audio(path, sr, normalize="none")
            timeline = predict_segments(artifact, audio, segment_s, hop_s, group=group, emotions=emotions)
            error = np.where(timeline["status"] == "ok", "", "no speech detected in this window")
            frames.append(timeline.assign(path=str(path), error=error))
        except (AudioError, ValueError) as err:
            frames.append(pd.DataFrame([{"path": str(path), "segment": None, "start_s": None, "end_s": None,
                                         **_error_row(err)}]))
        if on_file:
            on_file()
    if not frames:
        return pd.DataFrame(columns=SEGMENT_COLUMNS)
    return pd.concat(frames, ignore_index=True)[SEGMENT_COLUMNS]


# -- the printed table ------------------------------------------------------------------------------

ELLIPSIS = "…"


def _join(parts: tuple[str, ...], keep: set[int]) -> str:
    """The kept path components joined by "/", an ellipsis standing for each run of dropped ones."""
    out: list[str] = []
    for i, part in enumerate(parts):
        if i in keep:
            out.append(part)
        elif not out or out[-1] != ELLIPSIS:
            out.append(ELLIPSIS)
    return "/".join(out)


def _fit(parts: tuple[str, ...], max_width: int) -> set[int]:
    """The file name, and as many folders just above it as fit in `max_width` with the ellipsis."""
    keep = {len(parts) - 1}
    for i in range(len(parts) - 2, -1, -1):
        if len(_join(parts, keep | {i})) > max_width:
            break
        keep.add(i)
    return keep


def display_paths(paths: Sequence[str], max_width: int = 48) -> list[str]:
    """Labels that tell the rows apart: each path relative to the folder all share; a label longer than
    `max_width` keeps its tail (the file name whole, even past `max_width`, then the folders above it that
    fit, "…/" for the rest), plus the nearest folder that tells two such tails apart."""
    from collections import defaultdict

    paths = [str(p) for p in paths]
    if not paths:
        return []
    parts = [Path(p).parts for p in paths]
    common = 0
    if len(set(paths)) > 1:
        while all(len(q) > common + 1 for q in parts) and len({q[common] for q in parts}) == 1:
            common += 1
    else:
        common = max(len(parts[0]) - 2, 0)  # one file: its folder and name
    rel = [q[common:] for q in parts]
    keeps = [_fit(r, max_width) for r in rel]
    labels: list[str] = []
    while True:
        labels = [_join(r, k) for r, k in zip(rel, keeps)]
        groups: dict[str, list[int]] = defaultdict(list)
        for i, label in enumerate(labels):
            groups[label].append(i)
        grew = False
        for members in groups.values():
            if len({paths[i] for i in members}) < 2:  # one file (maybe listed twice): nothing to tell apart
                continue
            for back in range(2, max(len(rel[i]) for i in members) + 1):  # the nearest folder that differs
                below = [i for i in members if len(rel[i]) >= back]
                if len({rel[i][-back] if len(rel[i]) >= back else None for i in members}) > 1 and \
                        any(len(rel[i]) - back not in keeps[i] for i in below):
                    for i in below:
                        keeps[i].add(len(rel[i]) - back)
                    grew = True
                    break
        if not grew:
            break
    # a bare file name rather than "…/" and the name when even that is too wide (and the name is unique)
    bare = [r[-1] if len(label) > max_width and label == f"{ELLIPSIS}/{r[-1]}" else label
            for r, label in zip(rel, labels)]
    return [b if b == label or bare.count(b) == 1 else label for b, label in zip(bare, labels)]


def _fmt(value: Any, digits: int = 2) -> str:
    return "" if value is None or value != value else f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    return "" if value is None or value != value else f"{100 * value:.0f}"


def table_rows(df: pd.DataFrame, limit: int = 50, max_width: int = 48, percent: bool = False) -> list[list[str]]:
    """The rows `ser predict` prints: file label, emotion ("error" for a bad file, "no speech" for a file the
    speech gate refused), confidence, the seven probabilities (or whole percents), and the error message last."""
    head = df.head(limit)
    labels = display_paths(list(head["path"]), max_width)
    num = _pct if percent else _fmt
    rows = []
    for label, r in zip(labels, head.to_dict("records")):
        if r.get("status") == "no_speech":
            rows.append([label, "no speech", "", *[""] * len(EMOTIONS), str(r["error"])])
        elif r["error"]:
            rows.append([label, "error", "", *[""] * len(EMOTIONS), str(r["error"])])
        else:
            rows.append([label, r["emotion"], num(r["confidence"]), *(num(r["prob_" + e]) for e in EMOTIONS), ""])
    return rows


# From the roomiest to the narrowest: (gap between columns, probabilities in percent, probability columns shown)
_LAYOUTS = ((1, False, True), (0, False, True), (0, True, True), (0, True, False))


class FilesTable:
    """The `ser predict` table, laid out when printed for the width the console offers: the file column
    is never cut; to fit, the columns close up, probabilities turn into whole percents, then give way
    (the full values are in --out)."""

    def __init__(self, df: pd.DataFrame, title: str, limit: int = 50, max_width: int = 48) -> None:
        self.df, self.title, self.limit, self.max_width = df, title, limit, max_width

    def build(self, width: int, console: Any = None) -> Any:
        """The rich Table for a console `width` columns wide: the roomiest layout that fits."""
        from rich.console import Console
        from rich.measure import Measurement

        console = console or Console(width=width)
        options = console.options.update_width(10_000)  # the natural width: a measure never exceeds the offer
        rows: list[list[str]] = []
        for gap, percent, probs in _LAYOUTS:
            cells = [["", *r[1:]] for r in table_rows(self.df, self.limit, self.max_width, percent)]
            others = Measurement.get(console, options, self._table(cells, gap, percent, probs, fold=False)).maximum
            budget = width - (others - 4)  # less the file column's own minimum of 4
            rows = table_rows(self.df, self.limit, max(1, min(self.max_width, budget)), percent)
            table = self._table(rows, gap, percent, probs, fold=False)
            if Measurement.get(console, options, table).maximum <= width:
                return table
        # a file name wider than even the narrowest layout leaves room for: wrapped, never cut
        return self._table(rows, 0, True, False, fold=True)

    def _table(self, rows: list[list[str]], gap: int, percent: bool, probs: bool, fold: bool) -> Any:
        from rich import box
        from rich.table import Table

        errors = [f"{r[0]}: {r[-1]}" for r in rows if r[-1]]
        title = self.title + (" (in %)" if percent else "")
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, gap), collapse_padding=True,
                      caption="\n".join(errors) or None, caption_justify="left", caption_style="red")
        table.add_column("file", no_wrap=not fold, overflow="fold" if fold else "ellipsis",
                         min_width=None if fold else max([4, *(len(r[0]) for r in rows)]))
        table.add_column("emotion", no_wrap=True, min_width=7)
        table.add_column("conf", justify="right", no_wrap=True, min_width=4)
        if probs:
            for e in EMOTIONS:
                table.add_column(e[:3], justify="right", no_wrap=True, min_width=3 if percent else 4)
        for row in rows:
            cells = row[:-1] if probs else row[:3]
            table.add_row(*cells, style="red" if row[-1] else None)
        return table

    def __rich_console__(self, console: Any, options: Any) -> Any:
        yield self.build(options.max_width, console)


def files_table(df: pd.DataFrame, title: str, limit: int = 50, max_width: int = 48) -> FilesTable:
    """A rich renderable of `table_rows` that fits the console's width (see FilesTable): the file column
    never wraps or loses its name, probabilities carry three-letter headers, and each failed file's error
    is listed under the table."""
    return FilesTable(df, title, limit, max_width)


def _status_column(df: pd.DataFrame) -> pd.Series:
    """The `status` column; for a table without one, `error` or `ok` from the error text."""
    if "status" in df:
        return df["status"]
    return pd.Series(np.where(df["error"].astype(bool), "error", "ok"), index=df.index)


def failed_files(df: pd.DataFrame) -> tuple[int, int]:
    """(files that could not be read, files in all) for a `predict_files` or `predict_files_segments` table."""
    status = _status_column(df)
    return int(df.loc[status == "error", "path"].nunique()), int(df["path"].nunique())


def no_speech_files(df: pd.DataFrame) -> int:
    """Files without a single row with speech (the file refused, or every one of its windows)."""
    status = _status_column(df)
    spoken = set(df.loc[status == "ok", "path"]) | set(df.loc[status == "error", "path"])
    return len(set(df["path"]) - spoken)


def exit_code(df: pd.DataFrame) -> int:
    """What `ser predict` exits with: 1 when no file got an emotion (all unreadable or without speech), else 0."""
    return 1 if len(df) and not (_status_column(df) == "ok").any() else 0


OUT_SUFFIXES = (".csv", ".parquet", ".json")


def _check_out(out: Path | str) -> Path:
    out = Path(out)
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise ValueError(f"--out must end in .csv, .parquet or .json, not {out.suffix.lower()!r}")
    return out


def write_table(df: pd.DataFrame, out: Path | str) -> Path:
    """Write predictions atomically as .csv, .parquet or .json (records); other suffixes are a ValueError."""
    from ser.io import atomic_path

    out = _check_out(out)
    suffix = out.suffix.lower()
    with atomic_path(out) as tmp:
        if suffix == ".csv":
            df.to_csv(tmp, index=False)
        elif suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_json(tmp, orient="records", indent=2)
    return out


def _file_schema() -> Any:
    import pyarrow as pa

    text = {"path", "emotion", "group", "normalised_by", "status", "error"}
    return pa.schema([(c, pa.string() if c in text else pa.float64()) for c in FILE_COLUMNS])


class TableWriter:
    """`predict_files` rows appended batch by batch to a .csv, .parquet or .json file (what `write_table`
    writes for the whole table), in a temp file that replaces `out` only when the block ends without error."""

    def __init__(self, out: Path | str):
        self.out = _check_out(out)
        self.suffix = self.out.suffix.lower()
        self.rows = 0

    def __enter__(self) -> TableWriter:
        from contextlib import ExitStack

        from ser.io import atomic_path

        self._stack = ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.out))
        if self.suffix == ".parquet":
            import pyarrow.parquet as pq

            self._parquet = self._stack.enter_context(pq.ParquetWriter(tmp, _file_schema()))
        else:
            self._text = self._stack.enter_context(open(tmp, "w", encoding="utf-8", newline=""))
        return self

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        df = pd.DataFrame(rows, columns=FILE_COLUMNS)
        if self.suffix == ".parquet":
            import pyarrow as pa

            self._parquet.write_table(pa.Table.from_pandas(df, schema=_file_schema(), preserve_index=False))
        elif self.suffix == ".csv":
            df.to_csv(self._text, header=not self.rows, index=False)
        else:  # the records of this batch spliced into one JSON array, as DataFrame.to_json writes it
            body = df.to_json(orient="records", indent=2)[2:-2]
            self._text.write(("[\n" if not self.rows else ",\n") + body)
        self.rows += len(df)

    def __exit__(self, *exc: Any) -> bool:
        if self.suffix == ".csv" and not self.rows:
            pd.DataFrame(columns=FILE_COLUMNS).to_csv(self._text, index=False)
        elif self.suffix == ".json":
            self._text.write("\n]" if self.rows else "[]")
        return bool(self._stack.__exit__(*exc))


@dataclass
class Tally:
    """Running counts of `predict_files` rows: what `failed_files`, `no_speech_files` and `exit_code` say of
    the whole table, without holding it (one row per file; a file given twice counts twice)."""

    rows: int = 0
    ok: int = 0
    no_speech: int = 0
    error: int = 0

    def add(self, row: dict[str, Any]) -> None:
        self.rows += 1
        status = row.get("status") or ("error" if row.get("error") else "ok")
        setattr(self, status, getattr(self, status) + 1)

    def failed_files(self) -> tuple[int, int]:
        return self.error, self.rows

    def exit_code(self) -> int:
        return 1 if self.rows and not self.ok else 0


def collect_rows(rows: Iterable[dict[str, Any]], out: Path | str | None = None, keep: int = 50,
                 keep_all: bool = False, batch: int = 256) -> tuple[pd.DataFrame, Tally]:
    """Drain `iter_file_rows`: rows go to `out` (if any) `batch` at a time as they come, statuses are counted,
    and the first `keep` rows (every row with `keep_all`, e.g. for a plot of every file) are returned."""
    from contextlib import nullcontext

    tally, kept, pending = Tally(), [], []
    with TableWriter(out) if out is not None else nullcontext() as writer:
        for row in rows:
            tally.add(row)
            if keep_all or len(kept) < keep:
                kept.append(row)
            if writer is not None:
                pending.append(row)
                if len(pending) >= batch:
                    writer.write(pending)
                    pending = []
        if writer is not None:
            writer.write(pending)
    return pd.DataFrame(kept, columns=FILE_COLUMNS), tally
