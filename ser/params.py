"""params.yaml as typed, validated settings: a bad value fails before any work, naming its key."""
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


class TrainParams(BaseModel):
    """Only what ties `train:` to other sections is checked here; `keras` and `fraction` are typed in ser.train."""

    model_config = ConfigDict(extra="allow")

    loso: list[str] = Field(default_factory=list)


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


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class Params(BaseModel):
    """The whole params.yaml. Sections of later stages are typed where they are used."""

    model_config = ConfigDict(extra="allow")

    seed: int = 42
    corpora: dict[str, CorpusEntry]
    demo: DemoParams = Field(default_factory=DemoParams)
    ingest: IngestParams = Field(default_factory=IngestParams)
    labels: dict[str, dict[str, str | None]]
    split: SplitParams = Field(default_factory=SplitParams)
    runner: RunnerParams = Field(default_factory=RunnerParams)
    models: dict[str, ModelEntry] = Field(default_factory=dict)
    train: TrainParams = Field(default_factory=TrainParams)
    schedule: ScheduleParams = Field(default_factory=ScheduleParams)

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
        if self.split.protocol == "cross_corpus":
            if not self.split.test_corpora:
                raise ValueError("split.test_corpora is empty but split.protocol is cross_corpus")
            unknown = set(self.split.test_corpora) - set(self.corpora)
            if unknown:
                raise ValueError(f"split.test_corpora names unknown corpora {sorted(unknown)}")
            if set(self.split.test_corpora) == set(self.corpora):
                raise ValueError("split.test_corpora holds every corpus: nothing is left to train on")
        return self

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


def load_params(path: Path | str = DEFAULT_PATH, overrides: dict[str, Any] | None = None) -> Params:
    """Read and validate params.yaml; raise ParamsError naming the bad key."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path} not found: run from the project root or pass --params")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if overrides:
        raw = {**raw, **overrides}
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        raise ParamsError(f"{path} has bad values:\n{_format_error(err)}") from None
