"""params.yaml as typed, validated settings: a bad value fails before any work, naming its key.

Every section is typed here with extra keys forbidden; this is the one place defaults live. A stage
loads the file once (`load_params`) and passes the typed `Params` (or one section of it) down.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ser import EMOTIONS

DEFAULT_PATH = Path("params.yaml")


class ParamsError(ValueError):
    """params.yaml is missing or holds a bad value; the message names the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CorpusEntry(_Section):
    format: str
    root: Path
    options: dict[str, Any] = Field(default_factory=dict)
    labels: dict[str, str | None] | None = None  # overrides labels.<format>

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from ser import corpora

        if value not in corpora.REGISTRY:
            raise ValueError(f"unknown corpus format {value!r}; known: {', '.join(sorted(corpora.REGISTRY))}")
        return value


class DemoParams(_Section):
    out: Path = Path("data/raw/demo")
    speakers: int = Field(10, ge=8)
    utterances_per_emotion: int = Field(6, ge=1)
    sample_rate: int = Field(16000, ge=8000, le=96000)
    seed: int = 7


class IngestParams(_Section):
    workers: int = Field(2, ge=1)
    min_duration_s: float = Field(0.1, ge=0)
    max_duration_s: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> IngestParams:
        if self.max_duration_s <= self.min_duration_s:
            raise ValueError("max_duration_s must be greater than min_duration_s")
        return self


class SplitParams(_Section):
    protocol: Literal["speaker", "cross_corpus"] = "speaker"
    ratios: dict[Literal["train", "val", "test"], float] = Field(
        default_factory=lambda: {"train": 0.7, "val": 0.15, "test": 0.15})
    test_corpora: list[str] = Field(default_factory=list)
    drop_duplicates: bool = True
    min_eval_speakers: int = Field(2, ge=1)  # val and test speakers per corpus, where train keeps half (ser.split)

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, value: dict[str, float]) -> dict[str, float]:
        for key, ratio in value.items():
            if ratio < 0:
                raise ValueError(f"ratio {key} is negative ({ratio})")
        if value.get("train", 0) <= 0:
            raise ValueError("ratios.train must be positive")
        if abs(sum(value.values()) - 1) > 1e-6:
            raise ValueError(f"ratios must sum to 1 (they sum to {sum(value.values()):g})")
        return {k: value.get(k, 0.0) for k in ("train", "val", "test")}


class RunnerParams(_Section):
    kind: Literal["process", "thread"] = "process"
    workers: int = Field(2, ge=1)
    chunk_size: int = Field(200, ge=1)
    dask_address: str | None = None


class ModelEntry(BaseModel):
    """One `models:` entry: a `kind` from `ser.models` plus its hyper-parameters (the model class
    checks their names when it is built; checking them here would import scikit-learn/TensorFlow)."""

    model_config = ConfigDict(extra="allow")

    kind: str

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        from ser.models import model_input  # the registry, without importing any framework

        model_input(value)  # ValueError: unknown model kind 'x'; known kinds: ...
        return value




class AudioParams(_Section):
    """`audio:` one loader for every stage (ser.audio.load_audio)."""

    sample_rate: int = Field(16000, ge=8000, le=96000)
    trim_db: float | None = Field(None, gt=0)
    normalize: Literal["none", "peak", "rms"] = "peak"
    target_rms_dbfs: float = Field(-23.0, lt=0)
    min_duration_s: float = Field(0.0, ge=0)


class _Transform(_Section):
    p: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self):
        for lo in [k for k in type(self).model_fields if k.startswith("min_")]:
            hi = "max_" + lo.removeprefix("min_")
            if hi in type(self).model_fields and getattr(self, lo) > getattr(self, hi):
                raise ValueError(f"{lo} ({getattr(self, lo)}) must not exceed {hi} ({getattr(self, hi)})")
        return self


class NoiseParams(_Transform):
    min_snr_db: float = 10.0
    max_snr_db: float = 30.0
    colored: bool = True
    min_f_decay: float = -6.0
    max_f_decay: float = 6.0


class PitchShiftParams(_Transform):
    min_semitones: float = -2.0
    max_semitones: float = 2.0


class TimeStretchParams(_Transform):
    min_rate: float = Field(0.9, gt=0)
    max_rate: float = Field(1.1, gt=0)
    leave_length_unchanged: bool = False


class GainParams(_Transform):
    min_db: float = -6.0
    max_db: float = 6.0


class ShiftParams(_Transform):
    min_fraction: float = -0.1
    max_fraction: float = 0.1
    rollover: bool = True


class AugmentParams(_Section):
    """`augment:` training-split copies (ser.augment); a transform runs when present with p > 0."""

    copies: int = Field(0, ge=0)
    noise: NoiseParams | None = None
    pitch_shift: PitchShiftParams | None = None
    time_stretch: TimeStretchParams | None = None
    gain: GainParams | None = None
    shift: ShiftParams | None = None

    def as_config(self) -> dict[str, Any]:
        """The block as ser.augment reads it (only the keys params.yaml set, so chunk keys stay stable)."""
        return self.model_dump(exclude_unset=True)


class EncoderParams(_Section):
    """`features.encoder:` a pretrained speech encoder's pooled frames as features (ser.encoder.EncoderConfig)."""

    # the model (its width is checked on load); null, like `encoder: null`, means no encoder
    name: Literal["whisper-tiny.en", "whisper-base"] | None = "whisper-tiny.en"
    weights: str = Field("auto", min_length=1)  # auto: the named model's pinned packages; else a folder
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    pad_s: Literal["clip", 5, 10, 30] = "clip"
    compute_type: Literal["int8", "float32"] = "int8"
    threads: int = Field(0, ge=0)  # 0: the cores divided by runner.workers
    batch_size: int = Field(8, ge=1)


class FeaturesParams(_Section):
    """`features:` (ser.features.FeatureConfig; the sample rate comes from `audio.sample_rate`)."""

    n_fft: int = Field(512, ge=16)
    hop_length: int = Field(160, ge=1)
    win_length: int = Field(400, ge=1)
    n_mfcc: int = Field(20, ge=1)
    mfcc_deltas: bool = True
    n_mels: int = Field(64, ge=1)
    fmin: float = Field(50.0, ge=0)
    fmax: float | None = Field(8000.0, gt=0)
    n_chroma: int = Field(12, ge=0)
    n_contrast_bands: int = Field(6, ge=0)
    contrast_fmin: float = Field(200.0, gt=0)
    stats: list[Literal["mean", "std", "min", "max", "median", "skew", "kurtosis"]] = Field(
        default_factory=lambda: ["mean", "std"], min_length=1)
    logmel_frames: int = Field(300, ge=1)
    opensmile: Literal["eGeMAPSv02", "ComParE_2016"] | None = None
    encoder: EncoderParams | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FeaturesParams:
        if self.encoder is not None and self.encoder.name is None:
            self.encoder = None  # `name: null` is `encoder: null`: one meaning, one feature signature
        if self.win_length > self.n_fft:
            raise ValueError(f"win_length ({self.win_length}) must be at most n_fft ({self.n_fft})")
        if self.n_mfcc > self.n_mels:
            raise ValueError(f"n_mfcc ({self.n_mfcc}) must be at most n_mels ({self.n_mels})")
        if len(set(self.stats)) != len(self.stats):
            raise ValueError(f"stats lists a statistic twice: {self.stats}")
        return self


class ValidateRange(_Section):
    min: float
    max: float


class ValidateParams(_Section):
    """`validate:` thresholds of the Great Expectations suites (ser.validate)."""

    duration_s: ValidateRange = Field(default_factory=lambda: ValidateRange(min=0.1, max=60.0))
    sample_rate: ValidateRange = Field(default_factory=lambda: ValidateRange(min=8000, max=96000))
    min_rows_per_class: int = Field(1, ge=0)
    require_all_classes: bool = True
    imbalance_warn_ratio: float = Field(3.0, ge=1)


class SpeakerNormParams(_Section):
    """`normalize:` per-speaker z-scoring of features (ser.speaker_norm), not the audio's `audio.normalize`."""

    mode: Literal["none", "speaker"] = "speaker"
    min_group_size: int = Field(10, ge=2)


class KerasParams(_Section):
    """`train.keras:` shared knobs of the Keras models."""

    epochs: int = Field(30, ge=1)
    batch_size: int = Field(32, ge=1)
    optimizer: Literal["adam", "rmsprop", "sgd", "adagrad", "adadelta", "adamax", "nadam"] = "adam"
    learning_rate: float = Field(1e-3, gt=0)
    early_stopping_patience: int | None = Field(6, ge=1)
    reduce_lr_factor: float = Field(0.5, gt=0, lt=1)
    reduce_lr_patience: int | None = Field(3, ge=1)
    min_lr: float = Field(1e-5, ge=0)
    threads: int | None = Field(None, ge=1)
    verbose: int = Field(0, ge=0, le=2)


class SpecAugmentParams(_Section):
    """`models.NAME.spec_augment:` SpecAugment masks on a log-mel model's TRAINING batches (ser.models.keras_models):
    `freq_masks` bands of up to `freq_width` mels and `time_masks` spans of up to `time_width` frames set to 0
    (the standardised mean), each width drawn uniformly from 0..max per clip."""

    freq_masks: int = Field(2, ge=0)
    freq_width: int = Field(8, ge=0)
    time_masks: int = Field(2, ge=0)
    time_width: int = Field(30, ge=0)


class SequenceAugmentParams(_Section):
    """Training-batch augmentation keys every log-mel Keras model accepts in its `models:` entry; both off by
    default (measured on validation speakers in bench/results/seqaug_shared.md)."""

    spec_augment: SpecAugmentParams | None = None
    mixup_alpha: float = Field(0.0, ge=0)  # > 0: mix pairs of training clips and their labels, weight ~ Beta(a, a)


class TrainParams(_Section):
    """`train:` Keras knobs, the data-size fraction, and the models also scored leave-one-speaker-out."""

    keras: KerasParams = Field(default_factory=KerasParams)
    fraction: float = Field(1.0, gt=0, le=1)
    loso: list[str] = Field(default_factory=list)
    loso_max_speakers: int = Field(30, ge=2)


class CvParams(_Section):
    """`cv:` speaker-grouped k-fold cross-validation (cv@NAME stages), the cross-corpus stage, and the
    speaker-bootstrap intervals both report (ser.cv, ser.cross_corpus, ser.stats)."""

    k: int = Field(5, ge=2)
    draws: int = Field(1000, ge=1)
    models: list[str] = Field(default_factory=list)
    cross_corpus_model: str | None = None


class ScheduleParams(_Section):
    """`ser schedule`: when the pipeline flow runs, and on which DVC targets (empty: the whole DAG)."""

    cron: str = "0 3 * * *"
    targets: list[str] = Field(default_factory=list)

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError(f"cron {value!r} must have five fields (minute hour day month weekday)")
        return value


def parse_emotions(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The emotions a prediction may name, from "angry,happy" or a list (None or empty: all seven), in
    `EMOTIONS` order; a ValueError naming any unknown or repeated name, or a set of fewer than two."""
    if value is None:
        return None
    names = [n.strip().lower() for n in (value.split(",") if isinstance(value, str) else value)]
    names = [n for n in names if n]
    if not names:
        return None
    unknown = [n for n in names if n not in EMOTIONS]
    if unknown:
        raise ValueError(f"unknown emotion(s) {', '.join(map(repr, unknown))}; choose from {', '.join(EMOTIONS)}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"emotion(s) listed twice: {', '.join(repeated)}")
    if len(names) < 2:
        raise ValueError(f"restricting predictions to one emotion ({names[0]}) always answers it; give at least two")
    return tuple(e for e in EMOTIONS if e in names)


class PredictParams(_Section):
    """`predict:` (optional) defaults of `ser listen` (window, hop and smoothing of the streaming predictor) and
    of `ser predict`/`ser listen` (`emotions`: restrict predictions to these, for data with fewer than seven)."""

    window_s: float = Field(3.0, gt=0)
    hop_s: float = Field(1.0, gt=0)
    smoothing: float = Field(0.6, ge=0, le=1)
    emotions: list[str] | None = None

    @field_validator("emotions")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        found = parse_emotions(value)
        return None if found is None else list(found)


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class Settings(_Section):
    """The sections library code reads (what a model and its features depend on); `Params` adds the corpora.

    Library functions take a `Settings` (a `Params` is one); `Settings.coerce` turns a partial dict into one.
    """

    seed: int = 42
    audio: AudioParams = Field(default_factory=AudioParams)
    augment: AugmentParams = Field(default_factory=AugmentParams)
    features: FeaturesParams = Field(default_factory=FeaturesParams)
    normalize: SpeakerNormParams = Field(default_factory=SpeakerNormParams)
    train: TrainParams = Field(default_factory=TrainParams)
    validate_: ValidateParams = Field(default_factory=ValidateParams, alias="validate")
    split: SplitParams = Field(default_factory=SplitParams)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @classmethod
    def coerce(cls, params: Any) -> Settings:
        """A Settings (or Params) as is; a mapping (whole params or a subset of sections) validated."""
        if isinstance(params, Settings):
            return params
        fields = {f.alias or name for name, f in cls.model_fields.items()}
        try:
            return cls.model_validate({k: v for k, v in dict(params or {}).items() if k in fields})
        except ValidationError as err:
            raise ParamsError(f"bad values:\n{_format_error(err)}") from None

    @model_validator(mode="after")
    def _nyquist(self) -> Settings:
        fmax, sr = self.features.fmax, self.audio.sample_rate
        if fmax is not None and fmax > sr / 2:
            raise ValueError(f"features.fmax ({fmax:g}) must be at most audio.sample_rate / 2 ({sr / 2:g})")
        if self.features.encoder is not None and sr != 16000:
            raise ValueError(f"features.encoder needs audio.sample_rate 16000 (Whisper's rate), got {sr}")
        return self


class Params(Settings):
    """The whole params.yaml."""

    corpora: dict[str, CorpusEntry]
    demo: DemoParams = Field(default_factory=DemoParams)
    ingest: IngestParams = Field(default_factory=IngestParams)
    labels: dict[str, dict[str, str | None]]
    runner: RunnerParams = Field(default_factory=RunnerParams)
    models: dict[str, ModelEntry] = Field(default_factory=dict)
    train: TrainParams = Field(default_factory=TrainParams)
    schedule: ScheduleParams = Field(default_factory=ScheduleParams)
    cv: CvParams = Field(default_factory=CvParams)
    predict: PredictParams = Field(default_factory=PredictParams)

    @field_validator("corpora")
    @classmethod
    def _names(cls, value: dict[str, CorpusEntry]) -> dict[str, CorpusEntry]:
        if not value:
            raise ValueError("no corpus configured")
        for name in value:
            if not _NAME.fullmatch(name):
                raise ValueError(f"corpus name {name!r} must be letters, digits, '_', '-', '.'")
        return value

    @field_validator("models")
    @classmethod
    def _model_names(cls, value: dict[str, ModelEntry]) -> dict[str, ModelEntry]:
        for name in value:  # each names a DVC stage (train@NAME) and a folder (models/zoo/NAME)
            if not _NAME.fullmatch(name):
                raise ValueError(f"model name {name!r} must be letters, digits, '_', '-', '.'")
        return value

    @field_validator("labels")
    @classmethod
    def _emotions(cls, value: dict[str, dict[str, str | None]]) -> dict[str, dict[str, str | None]]:
        for fmt, mapping in value.items():
            for raw, emotion in mapping.items():
                if emotion is not None and emotion not in EMOTIONS:
                    raise ValueError(f"labels.{fmt}.{raw}: {emotion!r} is not one of {', '.join(EMOTIONS)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        for name, entry in self.corpora.items():
            if entry.labels is None and entry.format not in self.labels:
                raise ValueError(f"corpora.{name}: no label map (labels.{entry.format} is missing)")
            for raw, emotion in (entry.labels or {}).items():
                if emotion is not None and emotion not in EMOTIONS:
                    raise ValueError(f"corpora.{name}.labels.{raw}: {emotion!r} is not one of the seven")
        unknown_models = [name for name in self.train.loso if name not in self.models]
        if unknown_models:
            raise ValueError(f"train.loso names {', '.join(map(repr, unknown_models))}, not configured under "
                             f"models: ({', '.join(self.models) or 'none'})")
        unknown_cv = [name for name in self.cv.models if name not in self.models]
        if unknown_cv:
            raise ValueError(f"cv.models names {', '.join(map(repr, unknown_cv))}, not configured under "
                             f"models: ({', '.join(self.models) or 'none'})")
        if self.cv.cross_corpus_model is not None and self.cv.cross_corpus_model not in self.models:
            raise ValueError(f"cv.cross_corpus_model {self.cv.cross_corpus_model!r} is not configured under "
                             f"models: ({', '.join(self.models) or 'none'})")
        if self.split.protocol == "cross_corpus":
            if not self.split.test_corpora:
                raise ValueError("split.test_corpora is empty but split.protocol is cross_corpus")
            unknown = set(self.split.test_corpora) - set(self.corpora)
            if unknown:
                raise ValueError(f"split.test_corpora names unknown corpora {sorted(unknown)}")
            if set(self.split.test_corpora) == set(self.corpora):
                raise ValueError("split.test_corpora holds every corpus: nothing is left to train on")
        return self

    def corpus_roots(self) -> dict[str, Path]:
        return {name: Path(entry.root) for name, entry in self.corpora.items()}

    def label_map(self, corpus: str) -> dict[str, str | None]:
        """Raw label -> emotion (or None) for a configured corpus."""
        entry = self.corpora[corpus]
        return dict(entry.labels if entry.labels is not None else self.labels[entry.format])


def _format_error(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {key}: {e['msg']}")
    return "\n".join(lines)


_CACHE: dict[tuple[str, float], Params] = {}


def load_params(path: Path | str = DEFAULT_PATH, overrides: dict[str, Any] | None = None) -> Params:
    """Read and validate params.yaml once per process (again if the file changes); ParamsError names the bad key."""
    path = Path(path)
    key = (str(path.resolve()), path.stat().st_mtime_ns if path.is_file() else -1)
    if overrides is None and key in _CACHE:
        return _CACHE[key]
    params = _load(path, overrides)
    if overrides is None:
        _CACHE[key] = params
    return params


def check_params(path: Path | str = DEFAULT_PATH) -> Params:
    """`ser check`: every section, and every corpus root (but the demo corpus's, which a stage writes)
    exists and holds audio."""
    params = load_params(path)
    problems = []
    for name, entry in params.corpora.items():
        root = Path(entry.root)
        if root == params.demo.out:
            continue
        if not root.is_dir():
            problems.append(f"  corpora.{name}.root: folder {root} does not exist")
        elif not audio_files(root):
            problems.append(f"  corpora.{name}.root: folder {root} holds no audio file")
    if problems:
        raise ParamsError(f"{path} has bad values:\n" + "\n".join(problems))
    return params


def audio_files(root: Path) -> int:
    """How many files under `root` (recursively) have an audio extension (ser.corpora.base.AUDIO_EXTENSIONS)."""
    from ser.corpora.base import AUDIO_EXTENSIONS

    return sum(1 for f in Path(root).rglob("*") if f.suffix.lower() in AUDIO_EXTENSIONS and f.is_file())


def _load(path: Path, overrides: dict[str, Any] | None) -> Params:
    if not path.is_file():
        raise ParamsError(f"{path} not found: run from the project root or pass --params")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if overrides:
        raw = {**raw, **overrides}
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(f"{path} has bad values:\n{_format_error(err)}") from None
