"""Every library default is ser.params's: one edit there changes it everywhere, so they cannot drift."""
from __future__ import annotations

import inspect
from dataclasses import fields

import pytest
from pydantic import ValidationError

from ser import audio, demo, speaker_norm, validate
from ser.features import FeatureConfig
from ser.params import (AudioParams, DemoParams, FeaturesParams, KerasParams, SpeakerNormParams,
                        ValidateParams)


def test_feature_config_defaults_are_the_params_defaults():
    cfg, feats = FeatureConfig(), FeaturesParams()
    assert cfg.sample_rate == AudioParams().sample_rate == 16000
    names = [f.name for f in fields(FeatureConfig) if f.name != "sample_rate"]
    assert set(names) <= set(FeaturesParams.model_fields)
    for name in names:
        expected = getattr(feats, name)
        assert getattr(cfg, name) == (tuple(expected) if name == "stats" else expected), name
    assert cfg.stats == ("mean", "std") and cfg.opensmile is None and cfg.n_mfcc == 20


def test_keras_training_defaults_are_keras_params():
    keras_models = pytest.importorskip("ser.models.keras_models")
    assert keras_models.TRAINING_DEFAULTS == KerasParams().model_dump()
    assert keras_models.TRAINING_DEFAULTS["epochs"] == 30


@pytest.mark.parametrize("func", [audio.load_audio, audio.decode], ids=["load_audio", "decode"])
def test_audio_keyword_defaults_are_audio_params(func):
    sig, params = inspect.signature(func).parameters, AudioParams()
    for name in ("sample_rate", "trim_db", "target_rms_dbfs", "min_duration_s"):
        assert sig[name].default == getattr(params, name), name
    assert sig["normalize"].default == "none"  # a bare load leaves levels alone; stages pass audio.normalize
    assert audio.AUDIO_NORMALIZE_MODES == ("none", "peak", "rms")
    with pytest.raises(ValidationError):
        AudioParams(normalize="loud")


def test_speaker_norm_defaults_are_speaker_norm_params():
    assert speaker_norm.GroupNormalizer().min_group_size == SpeakerNormParams().min_group_size == 10
    assert speaker_norm.SPEAKER_NORM_MODES == ("none", "speaker")
    assert SpeakerNormParams().mode in speaker_norm.SPEAKER_NORM_MODES


def test_validate_and_demo_defaults_are_their_params():
    assert validate.DEFAULTS == ValidateParams().model_dump()
    assert validate.DEFAULTS["duration_s"] == {"min": 0.1, "max": 60.0}
    sig, params = inspect.signature(demo.write_demo_corpus).parameters, DemoParams()
    for name in ("speakers", "utterances_per_emotion", "sample_rate", "seed"):
        assert sig[name].default == getattr(params, name), name
    DemoParams(speakers=demo.MIN_SPEAKERS)
    with pytest.raises(ValidationError):
        DemoParams(speakers=demo.MIN_SPEAKERS - 1)


def test_seed_and_schedule_defaults_are_the_params_defaults():
    from flows import pipeline
    from ser.feature_table import FeatureSettings
    from ser.params import ScheduleParams, Settings, SplitParams
    from ser.split import build_manifest

    seed = Settings().seed
    sig, split = inspect.signature(build_manifest).parameters, SplitParams()
    assert sig["seed"].default == seed == 42
    assert sig["dedupe"].default == split.drop_duplicates
    assert sig["min_eval_speakers"].default == split.min_eval_speakers == 2
    assert FeatureSettings(features=FeatureConfig()).seed == seed
    assert pipeline.DEFAULT_CRON == ScheduleParams().cron == "0 3 * * *"


def test_sequence_augmentation_defaults_are_off():
    from ser.params import SequenceAugmentParams, SpecAugmentParams

    assert SequenceAugmentParams().model_dump() == {"spec_augment": None, "mixup_alpha": 0.0}
    assert SpecAugmentParams().model_dump() == {"freq_masks": 2, "freq_width": 8, "time_masks": 2, "time_width": 30}
    keras_models = pytest.importorskip("ser.models.keras_models")
    assert keras_models.AUGMENT_KEYS == set(SequenceAugmentParams.model_fields)
    assert keras_models.SpecAugment().get_config()["time_width"] == SpecAugmentParams().time_width
